"""The hub's HTTP surface (FastAPI): ingest today; the query API and dashboard join it."""
