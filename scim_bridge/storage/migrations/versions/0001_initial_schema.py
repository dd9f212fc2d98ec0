"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-12-04 19:55:57.327384
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('tenants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('access_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=255), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_access_tokens_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_access_tokens_token_hash'))
    )
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_tokens_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_tokens_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('groups',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('display_name', sa.String(length=512), nullable=False),
    sa.Column('display_name_key', sa.String(length=512), nullable=False),
    sa.Column('external_id', sa.String(length=512), nullable=True),
    sa.Column('org_id', sa.String(length=255), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_modified', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_groups_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
    sa.UniqueConstraint('tenant_id', 'display_name_key', name=op.f('uq_groups_tenant_id_display_name_key')),
    sa.UniqueConstraint('tenant_id', 'external_id', name=op.f('uq_groups_tenant_id_external_id'))
    )
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.create_index('ix_groups_tenant_created', ['tenant_id', 'created', 'id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('user_name', sa.String(length=512), nullable=False),
    sa.Column('user_name_key', sa.String(length=512), nullable=False),
    sa.Column('external_id', sa.String(length=512), nullable=True),
    sa.Column('display_name', sa.String(length=512), nullable=True),
    sa.Column('nick_name', sa.String(length=255), nullable=True),
    sa.Column('profile_url', sa.String(length=2048), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('user_type', sa.String(length=255), nullable=True),
    sa.Column('preferred_language', sa.String(length=64), nullable=True),
    sa.Column('locale', sa.String(length=64), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('name_formatted', sa.String(length=512), nullable=True),
    sa.Column('name_family_name', sa.String(length=255), nullable=True),
    sa.Column('name_given_name', sa.String(length=255), nullable=True),
    sa.Column('name_middle_name', sa.String(length=255), nullable=True),
    sa.Column('name_honorific_prefix', sa.String(length=64), nullable=True),
    sa.Column('name_honorific_suffix', sa.String(length=64), nullable=True),
    sa.Column('employee_number', sa.String(length=255), nullable=True),
    sa.Column('cost_center', sa.String(length=255), nullable=True),
    sa.Column('organization', sa.String(length=255), nullable=True),
    sa.Column('division', sa.String(length=255), nullable=True),
    sa.Column('department', sa.String(length=255), nullable=True),
    sa.Column('manager_value', sa.String(length=255), nullable=True),
    sa.Column('manager_ref', sa.String(length=2048), nullable=True),
    sa.Column('manager_display_name', sa.String(length=512), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_modified', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_users_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('tenant_id', 'external_id', name=op.f('uq_users_tenant_id_external_id')),
    sa.UniqueConstraint('tenant_id', 'user_name_key', name=op.f('uq_users_tenant_id_user_name_key'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_tenant_created', ['tenant_id', 'created', 'id'], unique=False)

    op.create_table('group_members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('member_group_id', sa.Uuid(), nullable=True),
    sa.Column('display', sa.String(length=512), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (member_group_id IS NULL)', name=op.f('ck_group_members_one_member')),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_group_members_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_group_id'], ['groups.id'], name=op.f('fk_group_members_member_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_group_members_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_group_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_members')),
    sa.UniqueConstraint('group_id', 'member_group_id', name=op.f('uq_group_members_group_id_member_group_id')),
    sa.UniqueConstraint('group_id', 'user_id', name=op.f('uq_group_members_group_id_user_id'))
    )
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_members_member_group_id'), ['member_group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_members_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_members_user_id'), ['user_id'], unique=False)

    op.create_table('user_values',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('attribute', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('value', sa.String(length=4096), nullable=True),
    sa.Column('value_key', sa.String(length=4096), nullable=True),
    sa.Column('display', sa.String(length=512), nullable=True),
    sa.Column('type', sa.String(length=64), nullable=True),
    sa.Column('primary', sa.Boolean(), nullable=True),
    sa.Column('formatted', sa.String(length=1024), nullable=True),
    sa.Column('street_address', sa.String(length=512), nullable=True),
    sa.Column('locality', sa.String(length=255), nullable=True),
    sa.Column('region', sa.String(length=255), nullable=True),
    sa.Column('postal_code', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_user_values_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_values_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_values'))
    )
    with op.batch_alter_table('user_values', schema=None) as batch_op:
        batch_op.create_index('ix_user_values_lookup', ['tenant_id', 'attribute', 'value_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_values_user_id'), ['user_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('user_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_values_user_id'))
        batch_op.drop_index('ix_user_values_lookup')

    op.drop_table('user_values')
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_group_members_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_group_members_member_group_id'))

    op.drop_table('group_members')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_tenant_created')

    op.drop_table('users')
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_index('ix_groups_tenant_created')

    op.drop_table('groups')
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_tokens_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_access_tokens_client_id'))

    op.drop_table('access_tokens')
    op.drop_table('tenants')

