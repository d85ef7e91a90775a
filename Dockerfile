# The edgesight hub (web and ingest share this image; compose.yaml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    EDGESIGHT_INSTANCE_PATH=/var/lib/edgesight

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY model_runtime ./model_runtime
COPY cloud_hub ./cloud_hub
RUN pip install '.[hub]' \
    && useradd --system --uid 10001 --home-dir /var/lib/edgesight edgesight \
    && mkdir -p /var/lib/edgesight \
    && chown edgesight /var/lib/edgesight

USER edgesight
EXPOSE 8000
CMD ["gunicorn", "--config", "python:cloud_hub.gunicorn_conf", "cloud_hub.wsgi:app"]
