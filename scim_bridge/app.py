"""Application factory: the only composition root (``wsgi.py`` calls :func:`create_app`)."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from scim_bridge import auth
from scim_bridge import cli
from scim_bridge.auth import tokens
from scim_bridge.domain import user_json
from scim_bridge.http import errors as http_errors
from scim_bridge.http import oauth
from scim_bridge.http import ops
from scim_bridge.http import request_log
from scim_bridge.http.admin import api as admin_api
from scim_bridge.http.admin import console as admin_console
from scim_bridge.http.context import PROFILES_KEY
from scim_bridge.http.scim import bp as scim_bp
from scim_bridge.mappings.loader import load_profiles
from scim_bridge.scim.filter.parser import parse_filter
from scim_bridge.settings import EXTENSION_KEY
from scim_bridge.settings import Settings
from scim_bridge.storage import session as storage_session
from scim_bridge.storage.prepared import compile_all
from scim_bridge.storage.repositories import users as user_repository
from scim_bridge.storage.repositories.groups import GroupRepository
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


log = logging.getLogger("scim_bridge.app")

WARM_FILTERS = ('userName eq "x"', 'externalId eq "x"', 'displayName eq "x"')
"""Filters whose parsed shape every IdP sends (their string values do not matter: see ``parse_filter``)."""


def warm_up(app: Flask) -> int:
    """Do now what each process's first requests would do; return how many statements were compiled.

    ``wsgi.py`` calls it, so the gunicorn master (``preload_app``) does it once before it forks and
    every worker inherits the result, also those that replace recycled ones (``max_requests``):
    the dialect learns the server on a first connection, the hot statements are built and compiled
    (~20 ms of a worker's first GET), the filter shapes IdPs send are parsed. The connection is
    closed before any fork. When the database cannot be reached, nothing is compiled and workers
    do it on their first requests, as without this.
    """
    storage: Storage = app.extensions[storage_session.EXTENSION_KEY]
    engine = storage.engine
    try:
        with engine.connect():
            pass  # the first connection initializes the dialect (server version, features)
    except SQLAlchemyError as exc:
        log.warning("warm-up skipped, the database is unreachable: %s", exc.__class__.__name__)
        return 0
    finally:
        storage.dispose()  # no connection may cross a fork
    dialect = engine.dialect
    user_json.build_statements(dialect.name)
    user_repository.build_statements(dialect.name)
    if storage.reads_along:
        # The token's statement joined with each read a GET makes along with it (PostgreSQL).
        for read in (user_json.one_user(dialect.name),
                     *(user_json.by_unique(dialect.name, column) for column in user_repository.UNIQUE_COLUMNS),
                     GroupRepository.row_read(uuid.UUID(int=0)).prepared):
            tokens.grant_joined(read)
    for text in WARM_FILTERS:
        parse_filter(text)
    return compile_all(dialect)
