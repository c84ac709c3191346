"""Alembic environment of the registry, shipped inside the package (no alembic.ini needed)."""
