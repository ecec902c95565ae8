# syntax=docker/dockerfile:1
# The realtime-supervisor agent worker: `realtime-supervisor start` (livekit's production mode).
#
#   docker build -t realtime-supervisor-agent .
#
# Two stages: `build` resolves and installs into a virtualenv with the pinned versions of
# constraints/lk18.txt (the set CI tests against); the runtime stage gets only that virtualenv on
# a clean slim image, so pip's caches and any build tooling never reach production.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
# Only what the package build reads (see .dockerignore): the pins, the licence and the two
# distributions (the library in supervisor/, the reference worker in agent/).
COPY LICENSE ./
COPY constraints/lk18.txt constraints/lk18.txt
COPY supervisor/ supervisor/
COPY agent/ agent/
# A regular (not editable) install: the runtime stage copies /opt/venv alone, without /src.
# Every pinned dependency ships a manylinux wheel (checked for linux/amd64), so no compiler is
# needed even here; an architecture without wheels would need build-essential in THIS stage only.
# pip byte-compiles what it installs, so the read-only runtime never needs to write .pyc files.
RUN /opt/venv/bin/pip install -c constraints/lk18.txt ./supervisor ./agent

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
WORKDIR /home/agent
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# 9464: the supervisor's /metrics, /healthz, /readyz, /status. 8081: livekit's worker health.
EXPOSE 9464 8081
# Kubernetes probes the service's /healthz and /readyz; an image health check would only
# duplicate them (and Docker's is ignored by Kubernetes).
HEALTHCHECK NONE
# Python is PID 1: livekit installs its own SIGTERM handler (drain, then exit) and its job
# processes ignore SIGTERM, so no init process is needed to forward or fan out signals.
CMD ["realtime-supervisor", "start"]
