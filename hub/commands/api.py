"""``netral api`` (serve the HTTP API) and ``netral api-key add`` (issue an agency key)."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore, add_key
from schemas.topics import Agency

from ..bootstrap import kafka
from ..settings import get_settings

console = Console()
api_key_app = typer.Typer(help="API keys for HTTP ingest (stored hashed).", no_args_is_help=True)


def api(
    host: str | None = typer.Option(None, help="Bind address (default NETRAL_API_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (NETRAL_API_PORT)."),
) -> None:
    """Serve the HTTP API (ingest) until Ctrl-C."""
    from ..api.app import create_app

    settings = get_settings()
    app = create_app(
        kafka(settings, "netral-api"),
        KeyStore.load(settings.resolved_api_keys_file()),
        IngestLimits(settings.ingest_max_records, settings.ingest_max_bytes,
                     settings.ingest_rate),
        cors_origins=settings.cors_origins(),
    )
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port,
                log_level="warning")


@api_key_app.command("add")
def add(agency: Agency = typer.Option(..., help="The agency the key may publish as.")) -> None:
    """Create a key for an agency; it is printed once and stored only as a hash."""
    path = get_settings().resolved_api_keys_file()
    key = add_key(path, agency)
    console.print(f"new {agency.value} key (shown once, store it safely): [bold]{key}[/]")
    console.print(f"hash stored in {path}")
