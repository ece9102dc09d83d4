"""Storage: table models, the engine and session factory, Alembic migrations."""
