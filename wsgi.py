"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from scim_bridge.app import create_app
from scim_bridge.app import warm_up

app = create_app()
# Before gunicorn forks its workers (preload_app): each one starts with the statements compiled.
warm_up(app)
