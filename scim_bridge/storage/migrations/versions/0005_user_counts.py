"""User counts: per-tenant user count deltas kept by triggers on users (totalResults without count(*))

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 02:00:00

The triggers are the only writers of ``user_counts`` (see ``UserCount`` in storage/models.py).
On SQLite, a later migration that rebuilds ``users`` (``batch_alter_table``) drops them with the
old table and must create them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# SQLite: one row per tenant, updated in place (the newest, should several exist). A user deleted by
# its tenant's deletion (ON DELETE CASCADE) counts nothing: its tenant's counts go with it.
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER users_counted_insert AFTER INSERT ON users
    BEGIN
        INSERT INTO user_counts (tenant_id, delta) SELECT NEW.tenant_id, 0
            WHERE NOT EXISTS (SELECT 1 FROM user_counts WHERE tenant_id = NEW.tenant_id);
        UPDATE user_counts SET delta = delta + 1
            WHERE id = (SELECT max(id) FROM user_counts WHERE tenant_id = NEW.tenant_id);
    END
    """,
    """
    CREATE TRIGGER users_counted_delete AFTER DELETE ON users
    WHEN EXISTS (SELECT 1 FROM tenants WHERE id = OLD.tenant_id)
    BEGIN
        INSERT INTO user_counts (tenant_id, delta) SELECT OLD.tenant_id, 0
            WHERE NOT EXISTS (SELECT 1 FROM user_counts WHERE tenant_id = OLD.tenant_id);
        UPDATE user_counts SET delta = delta - 1
            WHERE id = (SELECT max(id) FROM user_counts WHERE tenant_id = OLD.tenant_id);
    END
    """,
)

# PostgreSQL: one row per writing transaction and tenant, from each statement's transition table.
# A transaction's first statement inserts its row, later ones add to it (ON CONFLICT on its own
# txid: psycopg's executemany runs one INSERT per row, so per-statement rows were one per user).
# Another transaction's row is never touched: no writer waits on another's counter.
POSTGRESQL_TRIGGERS = (
    """
    CREATE FUNCTION user_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO user_counts (tenant_id, txid, delta)
            SELECT tenant_id, txid_current(), count(*) FROM added GROUP BY tenant_id
            ON CONFLICT (tenant_id, txid) DO UPDATE SET delta = user_counts.delta + EXCLUDED.delta;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION user_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO user_counts (tenant_id, txid, delta)
            SELECT r.tenant_id, txid_current(), -count(*) FROM removed r
            WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = r.tenant_id)
            GROUP BY r.tenant_id
            ON CONFLICT (tenant_id, txid) DO UPDATE SET delta = user_counts.delta + EXCLUDED.delta;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER users_counted_insert AFTER INSERT ON users
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION user_counts_added()
    """,
    """
    CREATE TRIGGER users_counted_delete AFTER DELETE ON users
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION user_counts_removed()
    """,
)


def upgrade() -> None:
    op.create_table('user_counts',
    sa.Column('id', BigIntPK, autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('txid', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_user_counts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_counts')),
    sa.UniqueConstraint('tenant_id', 'txid', name=op.f('uq_user_counts_tenant_id_txid'))
    )
    with op.batch_alter_table('user_counts', schema=None) as batch_op:
        batch_op.create_index('ix_user_counts_tenant_id', ['tenant_id', 'id'], unique=False)
    # The users that exist now; the triggers count every later insert and delete.
    op.execute("INSERT INTO user_counts (tenant_id, delta) SELECT tenant_id, count(*) FROM users GROUP BY tenant_id")
    for statement in (SQLITE_TRIGGERS if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS users_counted_insert" + ("" if op.get_bind().dialect.name == 'sqlite' else " ON users"))
    op.execute("DROP TRIGGER IF EXISTS users_counted_delete" + ("" if op.get_bind().dialect.name == 'sqlite' else " ON users"))
    if op.get_bind().dialect.name != 'sqlite':
        op.execute("DROP FUNCTION IF EXISTS user_counts_added()")
        op.execute("DROP FUNCTION IF EXISTS user_counts_removed()")
    with op.batch_alter_table('user_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_user_counts_tenant_id')
    op.drop_table('user_counts')
