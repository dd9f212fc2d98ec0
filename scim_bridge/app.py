"""Application factory: the only composition root (``wsgi.py`` calls :func:`create_app`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from scim_bridge import auth
from scim_bridge import cli
from scim_bridge.http import errors as http_errors
from scim_bridge.http import oauth
from scim_bridge.http import ops
from scim_bridge.http import request_log
from scim_bridge.http.admin import api as admin_api
from scim_bridge.http.admin import console as admin_console
from scim_bridge.http.context import PROFILES_KEY
from scim_bridge.http.scim import bp as scim_bp
from scim_bridge.mappings.loader import load_profiles
from scim_bridge.settings import EXTENSION_KEY
from scim_bridge.settings import Settings
from scim_bridge.storage import session as storage_session
from scim_bridge.storage.session import Storage


class App(Flask):
    """Flask, with the sync check of every hook and view remembered per function.

    Flask asks ``ensure_sync`` about each hook and view on every request (five calls for a SCIM
    GET), and each call asks ``inspect.iscoroutinefunction`` again: 2-3 % of a GET's CPU for an
    answer that never changes. This app has no async views; should one be added, it is still
    wrapped (the answer is remembered, not assumed).
    """

    _SYNC_CHECKS_KEPT = 1024
    """How many answers are remembered; beyond that (bound methods of ever-new objects) it starts over."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Return *func*, or its synchronous wrapper when it is a coroutine function (as Flask does)."""
        try:
            return self._sync[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: not remembered
            return super().ensure_sync(func)
        if len(self._sync) >= self._SYNC_CHECKS_KEPT:
            self._sync.clear()
        synced = self._sync[func] = super().ensure_sync(func)
        return synced


def create_app(settings: Settings | None = None, storage: Storage | None = None) -> Flask:
    """Build the Flask app from *settings* (default: the environment)."""
    settings = settings or Settings.from_env()
    app = App(__name__, instance_relative_config=False)
    app.config.update(
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions[EXTENSION_KEY] = settings
    # Mapping profiles are loaded once; an invalid one raises MappingError (file, key, problem) and
    # the server refuses to start.
    app.extensions[PROFILES_KEY] = load_profiles(settings.mappings_path())
    storage = storage or Storage.build(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                                       pool_size=settings.db_pool_size)
    storage_session.init_app(app, storage)
    auth.init_app(app, settings)
    request_log.init_app(app, settings.log_level)
    http_errors.init_app(app)
    app.register_blueprint(ops.bp)
    app.register_blueprint(scim_bp)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(admin_api.bp)
    admin_console.init_app(app, settings)
    cli.register(app)
    if settings.trusted_proxy_hops > 0:
        # Remote address (rate limits, audit) and scheme (authlib refuses plain http) from the proxy.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app


def get_settings(app: Flask) -> Settings:
    """Return the settings an app was built with."""
    settings: Settings = app.extensions[EXTENSION_KEY]
    return settings
