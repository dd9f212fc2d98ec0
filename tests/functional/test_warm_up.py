"""``warm_up``: what a worker's first requests would do, done once before gunicorn forks (wsgi.py)."""

from __future__ import annotations

import logging

from scim_bridge.app import create_app
from scim_bridge.app import warm_up
from scim_bridge.auth import tokens
from scim_bridge.domain import user_json
from scim_bridge.settings import Settings
from scim_bridge.storage import prepared
from scim_bridge.storage.repositories import groups as group_repository
from scim_bridge.storage.repositories import users as user_repository


def test_warm_up_compiles_the_hot_statements_and_leaves_no_connection(database_url):
    app = create_app(Settings(database_url=database_url, secret_key="test"))
    storage = app.extensions["scim_bridge.storage"]
    try:
        compiled = warm_up(app)
        dialect = storage.engine.dialect
        assert compiled == len(list(prepared._BUILT)) > 0
        for statement in (tokens._GRANT, user_json.one_user(dialect.name), user_json.unfiltered_page(dialect.name),
                          user_json.by_unique(dialect.name, "user_name_key"),
                          user_json.by_unique(dialect.name, "external_id"),
                          user_repository._read_one_statement(dialect.name, True, True)):
            assert dialect.name in statement._compiled, statement.statement
        assert storage.engine.pool.checkedout() == 0 and storage.read_connections.parked == 0
    finally:
        storage.dispose()


def test_warm_up_compiles_the_reads_along_with_the_token_where_they_are_made(database_url):
    app = create_app(Settings(database_url=database_url, secret_key="test"))
    storage = app.extensions["scim_bridge.storage"]
    storage.reads_along = True  # PostgreSQL's default; on SQLite for this test
    try:
        warm_up(app)
        dialect = storage.engine.dialect
        for read in (user_json.one_user(dialect.name), user_json.by_unique(dialect.name, "user_name_key"),
                     user_json.by_unique(dialect.name, "external_id"), group_repository._GROUP_ROW):
            assert dialect.name in tokens.grant_joined(read)._compiled, read.statement
    finally:
        storage.dispose()


def test_warm_up_compiles_what_a_request_would(database_url):
    """The SQL compiled before any request is the SQL a request compiles (the dialect was initialized first)."""
    app = create_app(Settings(database_url=database_url, secret_key="test"))
    storage = app.extensions["scim_bridge.storage"]
    try:
        warm_up(app)
        dialect = storage.engine.dialect
        for statement in list(prepared._BUILT):
            if isinstance(statement, prepared.PreparedRead):
                compiled_with = prepared.statement_dialect(dialect)
                assert statement.compiled_for(dialect).sql == str(statement.statement.compile(dialect=compiled_with))
    finally:
        storage.dispose()


def test_requests_after_warm_up_answer_as_before(app, scim):
    user = scim.create_user("warm@example.com", externalId="ext-warm", name={"givenName": "W", "familyName": "Arm"})
    paths = [f"/Users/{user['id']}", '/Users?filter=userName eq "WARM@example.com"',
             '/Users?filter=externalId eq "ext-warm"', "/Users?startIndex=1&count=5"]
    before = [scim.get(path).get_json() for path in paths]
    assert warm_up(app) > 0
    after = [scim.get(path).get_json() for path in paths]
    assert after == before
    assert before[1]["totalResults"] == 1 and before[2]["Resources"][0]["id"] == user["id"]


def test_warm_up_without_a_database_is_skipped_with_a_warning(caplog):
    app = create_app(Settings(database_url="postgresql+psycopg://root@127.0.0.1:1/unreachable", secret_key="test"))
    with caplog.at_level(logging.WARNING, logger="scim_bridge.app"):
        assert warm_up(app) == 0
    assert "warm-up skipped, the database is unreachable" in caplog.text
