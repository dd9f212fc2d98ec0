"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    SQLite has no time zone support, so values are stored as naive UTC and handed back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


_UUID7_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)
_UUID7_RANDOM = ((1 << 80) - 1) & ~((0xF << 76) | (0x3 << 62))


def new_id() -> uuid.UUID:
    """Return a new resource id: a UUID version 7 (RFC 9562 §5.7), its first 48 bits the time in ms.

    Version 4 ids put every new row at a random place in each index that leads with the id (the
    users' primary key, their org state's, their values' index by user): one more page to read
    and rewrite per index and insert once a tenant's indexes outgrow the caches. Ids in time
    order append to the end of those indexes instead. The other 74 bits are random, so ids stay
    unguessable; the creation time they reveal is the resource's ``meta.created`` anyway.
    """
    milliseconds = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big") & _UUID7_RANDOM
    return uuid.UUID(int=(milliseconds & 0xFFFF_FFFF_FFFF) << 80 | _UUID7_VERSION_AND_VARIANT | random_bits)


class Base(DeclarativeBase):
    """Base of every model; one metadata with a naming convention so migrations are deterministic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
    }
