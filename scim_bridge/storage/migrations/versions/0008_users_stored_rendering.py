"""users keep their default rendering as JSON texts, written with the user

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 03:10:00

A 100-user list page spent about half of its PostgreSQL time rendering each user's attributes and
multi-valued attributes as JSON (``domain/user_json.py``): ~3.3 ms for the page's statement, ~1.7 ms
with those texts read from columns (20,000 users, same machine). They are now rendered when the
user is written, and read while ``rendered_version`` equals the user's ``version`` and
``rendered_format`` the code's format. Users written before this revision have NULLs there and are
rendered by the database as before (no slower than before), until their next write stores theirs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('rendered', sa.Text(), nullable=True))
        batch.add_column(sa.Column('rendered_enterprise', sa.Text(), nullable=True))
        batch.add_column(sa.Column('rendered_version', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('rendered_format', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('rendered_format')
        batch.drop_column('rendered_version')
        batch.drop_column('rendered_enterprise')
        batch.drop_column('rendered')
