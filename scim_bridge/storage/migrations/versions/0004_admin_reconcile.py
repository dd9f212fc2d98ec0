"""Admin reconciliation: reconciliation plans with their lines and outcome, admin console sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('reconcile_plans',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=True),
    sa.Column('source_format', sa.String(length=8), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('applied_by', sa.String(length=128), nullable=True),
    sa.Column('outcome', sa.String(length=1024), nullable=True),
    sa.CheckConstraint("status IN ('planned', 'applied', 'refused', 'failed')", name=op.f('ck_reconcile_plans_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_reconcile_plans_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_plans'))
    )
    with op.batch_alter_table('reconcile_plans', schema=None) as batch_op:
        batch_op.create_index('ix_reconcile_plans_tenant_created', ['tenant_id', 'created'], unique=False)

    op.create_table('reconcile_plan_lines',
    sa.Column('id', BigIntPK, autoincrement=True, nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('org_pk', sa.Uuid(), nullable=True),
    sa.Column('org_id', sa.String(length=255), nullable=True),
    sa.Column('new_org_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=512), nullable=True),
    sa.Column('new_name', sa.String(length=512), nullable=True),
    sa.Column('group_id', sa.Uuid(), nullable=True),
    sa.Column('group_name', sa.String(length=512), nullable=True),
    sa.Column('reason', sa.String(length=1024), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['reconcile_plans.id'], name=op.f('fk_reconcile_plan_lines_plan_id_reconcile_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_plan_lines')),
    sa.UniqueConstraint('plan_id', 'position', name=op.f('uq_reconcile_plan_lines_plan_id_position'))
    )

    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('credential_kind', sa.String(length=16), nullable=False),
    sa.Column('credential_ref', sa.String(length=64), nullable=False),
    sa.Column('credential_check', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_console_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_tenant_id'))
    op.drop_table('console_sessions')
    op.drop_table('reconcile_plan_lines')
    with op.batch_alter_table('reconcile_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_reconcile_plans_tenant_created')
    op.drop_table('reconcile_plans')
