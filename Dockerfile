# syntax=docker/dockerfile:1
#
# crowdguard worker images. Two final targets:
#
#   docker build --target cpu -t crowdguard:0.1.0 .        # python:3.11-slim + onnxruntime
#   docker build --target gpu -t crowdguard:0.1.0-gpu .    # CUDA/cuDNN runtime + onnxruntime-gpu
#
# Both run `crowdguard run` as uid 10001 with the default model baked in at
# /app/models/crowdguard-detector and serve /metrics, /healthz, /readyz on :6066.
# Neither contains torch (training stays out of the images).
#
# The pip steps live in docker/install.sh (pins: docker/requirements-*.txt), which
# scripts/check_dockerfile.sh also runs, so the image's install is tested without a
# container engine. Needs BuildKit (default since Docker 23) for RUN --mount.

# ---- pinned versions (override with --build-arg) -----------------------------------
ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
# onnxruntime and onnxruntime-gpu are installed at this same version.
ARG ONNXRUNTIME_VERSION=1.31.1
# onnxruntime-gpu >= 1.27 is built for CUDA 13 + cuDNN 9 (NVIDIA driver >= 580).
# For CUDA 12 nodes: --build-arg ONNXRUNTIME_VERSION=1.25.1
#                    --build-arg CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu22.04
ARG APP_UID=10001

# ---- builder: the crowdguard wheel ----------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# README.m[d]: the glob lets the build go on should the README be absent.
COPY pyproject.toml README.m[d] ./
COPY service ./service
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- cpu: the default runtime image ---------------------------------------------------
# (the ENV/USER/HEALTHCHECK block is repeated in `gpu`: stages on different bases
#  cannot share it)
FROM ${PYTHON_IMAGE} AS cpu
ARG ONNXRUNTIME_VERSION
ARG APP_UID
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=docker,target=/docker \
    ONNXRUNTIME_VERSION=${ONNXRUNTIME_VERSION} bash /docker/install.sh cpu /opt/venv /wheels \
    && useradd --uid ${APP_UID} --user-group --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin crowdguard
WORKDIR /app
COPY models/crowdguard-detector /app/models/crowdguard-detector
ENV CROWDGUARD_MODEL_DIR=/app/models/crowdguard-detector \
    CROWDGUARD_DEVICE=cpu \
    CROWDGUARD_WEB_HOST=0.0.0.0 \
    CROWDGUARD_WEB_PORT=6066 \
    CROWDGUARD_DATA_DIR=/tmp/crowdguard \
    CROWDGUARD_LOG_FORMAT=json \
    HOME=/tmp
USER ${APP_UID}:${APP_UID}
EXPOSE 6066
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CROWDGUARD_WEB_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["crowdguard"]
CMD ["run"]

# ---- gpu: CUDA + cuDNN runtime, onnxruntime-gpu -----------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ARG ONNXRUNTIME_VERSION
ARG APP_UID
ARG PYTHON_VERSION
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=docker,target=/docker \
    ONNXRUNTIME_VERSION=${ONNXRUNTIME_VERSION} PYTHON=python${PYTHON_VERSION} \
        bash /docker/install.sh gpu /opt/venv /wheels \
    && useradd --uid ${APP_UID} --user-group --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin crowdguard
WORKDIR /app
COPY models/crowdguard-detector /app/models/crowdguard-detector
ENV CROWDGUARD_MODEL_DIR=/app/models/crowdguard-detector \
    CROWDGUARD_DEVICE=cuda \
    CROWDGUARD_WEB_HOST=0.0.0.0 \
    CROWDGUARD_WEB_PORT=6066 \
    CROWDGUARD_DATA_DIR=/tmp/crowdguard \
    CROWDGUARD_LOG_FORMAT=json \
    HOME=/tmp \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER ${APP_UID}:${APP_UID}
EXPOSE 6066
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CROWDGUARD_WEB_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["crowdguard"]
CMD ["run"]

# `docker build .` with no --target builds the last stage; make that the CPU image.
FROM cpu AS default
