"""user_values indexed by (user_id, attribute, position), replacing the index on user_id alone

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 05:00:00

Every read of a user's multi-valued attributes selects by user_id and wants them grouped by
attribute in position order. With this index the rows come in that order with no sort, which on
SQLite turned the per-user JSON rendering of a list page (``domain/user_json.py``) from a window
function (~19 µs a user) into a plain GROUP BY (~7 µs). The index serves every lookup by user_id
the old one served (user_id is its first column), so writes maintain one index, as before.
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_user_values_user_order', 'user_values', ['user_id', 'attribute', 'position'])
    op.drop_index('ix_user_values_user_id', table_name='user_values')


def downgrade() -> None:
    op.create_index('ix_user_values_user_id', 'user_values', ['user_id'])
    op.drop_index('ix_user_values_user_order', table_name='user_values')
