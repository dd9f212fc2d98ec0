"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from scim_bridge.app import create_app

app = create_app()
