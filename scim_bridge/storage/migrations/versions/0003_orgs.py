"""Infinity organizations: tenant profiles, orgs, org memberships, resolved user state, event log

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 09:00:00

groups.org_id (unused since 0001) becomes groups.iam_org_id: the IAM org ID a client pushes in the
Infinity Group extension (``iamOrgId``), an input the mapping profile may read. The org_id of an
organization lives in orgs.org_id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profile', sa.String(length=64), server_default='generic', nullable=False))
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.alter_column('org_id', new_column_name='iam_org_id', existing_type=sa.String(length=255),
                              existing_nullable=True)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('iam_org_id', sa.String(length=255), nullable=True))

    op.create_table('orgs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=True),
    sa.Column('name_locked', sa.Boolean(), nullable=False),
    sa.Column('orphaned', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_modified', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('idp', 'manual')", name=op.f('ck_orgs_source')),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_orgs_group_id_groups'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_orgs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orgs')),
    sa.UniqueConstraint('group_id', name=op.f('uq_orgs_group_id')),
    sa.UniqueConstraint('tenant_id', 'org_id', name=op.f('uq_orgs_tenant_id_org_id'))
    )

    op.create_table('org_memberships',
    sa.Column('id', BigIntPK, autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('org_pk', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('idp', 'manual')", name=op.f('ck_org_memberships_source')),
    sa.ForeignKeyConstraint(['org_pk'], ['orgs.id'], name=op.f('fk_org_memberships_org_pk_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_org_memberships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_org_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_memberships')),
    sa.UniqueConstraint('org_pk', 'user_id', 'source', name=op.f('uq_org_memberships_org_pk_user_id_source'))
    )
    with op.batch_alter_table('org_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_memberships_user_id'), ['user_id'], unique=False)

    op.create_table('user_org_state',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('primary_org_pk', sa.Uuid(), nullable=True),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('primary_org_conflict', sa.Boolean(), nullable=False),
    sa.Column('user_fields', sa.JSON(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['primary_org_pk'], ['orgs.id'], name=op.f('fk_user_org_state_primary_org_pk_orgs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_user_org_state_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_org_state_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_org_state'))
    )
    with op.batch_alter_table('user_org_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_org_state_primary_org_pk'), ['primary_org_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_org_state_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('events',
    sa.Column('id', BigIntPK, autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_tenant_cursor', ['tenant_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_tenant_cursor')
    op.drop_table('events')
    with op.batch_alter_table('user_org_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_org_state_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_user_org_state_primary_org_pk'))
    op.drop_table('user_org_state')
    with op.batch_alter_table('org_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_memberships_user_id'))
    op.drop_table('org_memberships')
    op.drop_table('orgs')
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.alter_column('iam_org_id', new_column_name='org_id', existing_type=sa.String(length=255),
                              existing_nullable=True)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('iam_org_id')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('profile')
