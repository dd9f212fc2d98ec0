"""Request sessions: reads run without a transaction, every unit of work in one real transaction."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from scim_bridge.storage.models import Tenant
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import unit_of_work


def _dbapi(session):
    return session.connection().connection.dbapi_connection


def _in_transaction(session, storage) -> bool:
    dbapi = _dbapi(session)
    if storage.is_sqlite:
        return bool(dbapi.in_transaction)
    import psycopg.pq

    return dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def test_reads_hold_no_transaction_and_writes_one(app, storage):
    with app.test_request_context("/scim/v2/Users"):
        session = get_session()
        session.execute(select(Tenant.id)).all()
        assert not _in_transaction(session, storage)
        if not storage.is_sqlite:
            assert _dbapi(session).autocommit is True
        with unit_of_work() as write:
            write.execute(select(Tenant.id)).all()
            assert _in_transaction(write, storage)
            if not storage.is_sqlite:
                assert _dbapi(write).autocommit is False
        # Reads after the write are back to no transaction (a fresh connection from the pool).
        session.execute(select(Tenant.id)).all()
        assert not _in_transaction(session, storage)


def test_a_failed_unit_of_work_leaves_nothing_behind(app, storage):
    slug = f"t-{uuid.uuid4().hex[:12]}"

    class Boom(Exception):
        pass

    with app.test_request_context("/scim/v2/Users"):
        get_session().execute(select(Tenant.id)).all()  # a read first, as a request does
        with pytest.raises(Boom), unit_of_work() as session:
            session.add(Tenant(id=uuid.uuid4(), slug=slug, name=slug, settings={}))
            session.flush()  # the row is in the database, inside the transaction
            raise Boom
    with storage.sessionmaker() as check:
        assert check.scalars(select(Tenant).where(Tenant.slug == slug)).first() is None


def test_pooled_connections_come_back_transactional_for_other_users(app, storage):
    """A connection used for autocommit reads is reset on return: the CLI's sessions get transactions."""
    with app.test_request_context("/scim/v2/Users"):
        get_session().execute(select(Tenant.id)).all()
    with storage.sessionmaker() as session:
        session.execute(select(Tenant.id)).all()
        assert _in_transaction(session, storage)
        if not storage.is_sqlite:
            assert _dbapi(session).autocommit is False
