# The edgesight hub (web, ingest, rollout share the `hub` image; compose.yaml picks the command).
# `--target adapt` (compose profile `adapt`) adds the model toolchain and CPU torch for `cloud-hub
# adapt-worker`; the default (last) stage stays torch-free.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EDGESIGHT_INSTANCE_PATH=/var/lib/edgesight

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY model_runtime ./model_runtime
COPY cloud_hub ./cloud_hub
RUN useradd --system --uid 10001 --home-dir /var/lib/edgesight edgesight \
    && mkdir -p /var/lib/edgesight \
    && chown edgesight /var/lib/edgesight

# Site adaptation worker: fine-tunes students on captured frames (torch only in this image). The CPU
# index keeps pip from pulling a multi-GB CUDA build of the pinned torch.
FROM base AS adapt
COPY synthetic_world ./synthetic_world
COPY firmware_models ./firmware_models
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu '.[hub,train]'
USER edgesight
ENV OMP_NUM_THREADS=1
CMD ["cloud-hub", "adapt-worker"]

FROM base AS hub
RUN pip install '.[hub]'
USER edgesight
EXPOSE 8000
CMD ["gunicorn", "--config", "python:cloud_hub.gunicorn_conf", "cloud_hub.wsgi:app"]
