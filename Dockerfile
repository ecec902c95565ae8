# syntax=docker/dockerfile:1
# The realtime-supervisor agent worker: `realtime-supervisor start` (livekit's production mode).
#
#   docker build -t realtime-supervisor-agent .
#
# Two stages: `build` installs into a virtualenv exactly the pinned, hash-checked set of
# constraints/image.txt (the versions CI tests against, from constraints/lk18.txt, with every
# file's sha256; `make lock` regenerates both); the runtime stage gets only that virtualenv and
# tini on a clean slim image, so pip's caches and any build tooling never reach production.
#
# The base image: pin it by digest for reproducible builds, with the tag beside it, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` prints the digest.) The default
# below is the tag alone: the machines this repository is built on cannot reach Docker Hub to
# learn the digest, and a made-up one would only break the build.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# tini, an init for PID 1 (Debian's build, statically linked, so it runs on any base): it
# reaps orphaned processes (a job process's own children re-parent to PID 1, and Python as PID 1
# never waits for them, so they stay zombies) and forwards SIGTERM to livekit unchanged.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini=0.19.0-1 \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the package build reads (see .dockerignore): the pins, the licence and the two
# distributions (the library in supervisor/, the reference worker in agent/).
COPY LICENSE ./
COPY constraints/image.txt constraints/image.txt
COPY supervisor/ supervisor/
COPY agent/ agent/
# A regular (not editable) install: the runtime stage copies /opt/venv alone, without /src.
# Every pinned dependency ships a manylinux wheel (checked for linux/amd64), so no compiler is
# needed even here; an architecture without wheels would need build-essential in THIS stage only.
# pip byte-compiles what it installs, so the read-only runtime never needs to write .pyc files.
# First every dependency, hash-checked (pip refuses a file whose sha256 is not in the lock), and
# the pinned build backend; then our two distributions from this source tree without resolving
# anything (--no-deps) and without fetching a build backend (--no-build-isolation); the backend
# then leaves the image.
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r constraints/image.txt \
 && /opt/venv/bin/pip install --no-deps --no-build-isolation ./supervisor ./agent \
 && /opt/venv/bin/pip uninstall -y -q setuptools \
 && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
# The root filesystem is read-only in Kubernetes: the only writable paths are the metrics
# directory and /tmp (emptyDirs in the chart; the directory below serves a plain `docker run`).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/var/run/realtime-supervisor/metrics
RUN groupadd --system --gid ${UID} agent \
 && useradd --system --uid ${UID} --gid ${UID} --home-dir /home/agent --create-home \
      --shell /usr/sbin/nologin agent \
 && mkdir -p /var/run/realtime-supervisor/metrics \
 && chown -R ${UID}:${UID} /var/run/realtime-supervisor
COPY --from=build /opt/venv /opt/venv
COPY --from=build /usr/bin/tini-static /usr/bin/tini
WORKDIR /home/agent
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 9464: the supervisor's /metrics, /healthz, /readyz, /status. 8081: livekit's worker health.
EXPOSE 9464 8081
# Kubernetes probes the service's /healthz and /readyz; an image health check would only
# duplicate them (and Docker's is ignored by Kubernetes).
HEALTHCHECK NONE
# tini is PID 1 and reaps zombies; it forwards SIGTERM to the worker, where livekit's own
# handler drains and exits (its job processes ignore SIGTERM, so no fan-out is wanted: no -g).
# The supervisor's gauges also ignore a zombie job process (see telemetry/multiproc.py).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["realtime-supervisor", "start"]
