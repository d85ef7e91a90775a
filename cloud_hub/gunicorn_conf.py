"""gunicorn settings for the web app: threads, because the live stream (SSE) holds a connection open."""

import os

bind = os.environ.get("EDGESIGHT_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("EDGESIGHT_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("EDGESIGHT_WEB_THREADS", "16"))
timeout = 60
graceful_timeout = 10
accesslog = "-"
forwarded_allow_ips = os.environ.get("EDGESIGHT_FORWARDED_ALLOW_IPS", "127.0.0.1")
