"""The national record in SQL: tables, idempotent writes, the sink and its Kafka runner.

The schema changes only through the Alembic migrations in ``migrations/``; SQLite (WAL) is the
embedded default and PostgreSQL (psycopg 3) the scale-out store, with the same code.
"""
