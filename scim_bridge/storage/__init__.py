"""Persistence: typed SQLAlchemy models, repositories, sessions and Alembic migrations."""
