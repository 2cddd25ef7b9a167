"""Sinks: national record (SQL), SIASN adapter, Satgas channels. Never imports Faust."""
