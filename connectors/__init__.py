"""Agency connectors: outbox relay, HTTP and file ingest. Never imports Faust."""
