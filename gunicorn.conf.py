"""Production gunicorn settings (``gunicorn -c gunicorn.conf.py wsgi:app``).

Every value can be overridden through the environment (``GUNICORN_*`` / ``PORT``).
"""

import multiprocessing
import os

# 127.0.0.1 by default: put a TLS-terminating proxy in front for anything else.
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# Sync workers, one per core plus one. A request is mostly the worker's own CPU (Python), with one
# to a few short round trips to the database, so more workers than that mostly add switching: on a
# 2-core machine with PostgreSQL on the same cores, 3 workers served 15-30 % more reads than 5
# (GET, filters) and as many writes or more; on SQLite, the same or more of everything
# (docs/benchmarks.md, thirteenth round, item 44). The one beyond the cores keeps the service answering
# while a long request (a /Bulk, a large group) holds a worker. With PostgreSQL on another host,
# each round trip is a longer wait: raise GUNICORN_WORKERS there (towards 2 x cores + 1).
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = "sync"
# Identity providers give up after 60 s (Okta); fail a stuck request before they do.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "55"))
graceful_timeout = 30
# IdPs reuse connections in bursts.
keepalive = 5
# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
# Import the app once in the master; forked workers share the read-only pages. Engines are created
# lazily per connection, and the pool is not used before fork.
preload_app = True
# Logs to stdout/stderr as one JSON line per request (the app logs; gunicorn's access log is off).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Headers from the proxy in front (X-Forwarded-*) are trusted only from localhost.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):  # noqa: ARG001
    """Drop connections inherited from the master so no socket is shared between processes."""
    from wsgi import app

    app.extensions["scim_bridge.storage"].engine.dispose(close=False)
