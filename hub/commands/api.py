"""``netral api`` (serve the HTTP API and dashboard) and ``netral api-key add`` (issue a key)."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console

from connectors.ingest import IngestLimits
from connectors.keys import KeyStore, add_key
from schemas.errors import ConfigError
from schemas.topics import Agency

from ..bootstrap import kafka, monitor
from ..settings import get_settings

console = Console()
api_key_app = typer.Typer(help="API keys (stored hashed): ingest keys per agency, monitoring keys "
                               "per role.", no_args_is_help=True)


def api(
    host: str | None = typer.Option(None, help="Bind address (default NETRAL_API_HOST)."),
    port: int | None = typer.Option(None, min=1, max=65535, help="Port (NETRAL_API_PORT)."),
) -> None:
    """Serve the HTTP API (ingest, monitoring, dashboard) until Ctrl-C."""
    from ..api.app import create_app

    settings = get_settings()
    app = create_app(
        kafka(settings, "netral-api"),
        KeyStore.load(settings.resolved_api_keys_file()),
        IngestLimits(settings.ingest_max_records, settings.ingest_max_bytes,
                     settings.ingest_rate),
        monitor=monitor(settings),
        session_secret=settings.session_secret(),
        session_max_age_s=settings.api_session_max_age_s,
    )
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port,
                log_level="warning", timeout_graceful_shutdown=5)


@api_key_app.command("add")
def add(
    role: str | None = typer.Option(
        None, help="A monitoring key: national, province, agency or public. Without it, an "
                   "ingest key for --agency."),
    agency: str | None = typer.Option(
        None, help="Ingest: the agency the key publishes as (bawaslu, bkn, ...). With --role "
                   "agency: the agency code or name its cases carry."),
    province: str | None = typer.Option(None, help="With --role province: the province code "
                                                   "(e.g. 31)."),
    label: str | None = typer.Option(None, help="A name for audit logs (default from the role)."),
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from ..api.access import Role, add_monitor_key

    settings = get_settings()
    if role is None:
        if agency is None or province is not None:
            raise ConfigError("give --agency (bawaslu, bkn, kemendagri, kemenpanrb, ppk) for an "
                              "ingest key, or --role for a monitoring key")
        try:
            ingest_agency = Agency(agency)
        except ValueError:
            raise ConfigError(f"--agency {agency!r} is not an ingest agency; one of: "
                              f"{', '.join(a.value for a in Agency)}") from None
        path = settings.resolved_api_keys_file()
        key = add_key(path, ingest_agency)
        console.print(f"new {ingest_agency.value} ingest key (shown once, store it safely): "
                      f"[bold]{key}[/]")
    else:
        try:
            parsed = Role(role)
        except ValueError:
            raise ConfigError(f"--role {role!r} is not a role; one of: "
                              f"{', '.join(r.value for r in Role)}") from None
        path = settings.resolved_monitor_keys_file()
        key = add_monitor_key(path, parsed, province=province, agency=agency, label=label)
        console.print(f"new {parsed.value} monitoring key (shown once, store it safely): "
                      f"[bold]{key}[/]")
    console.print(f"hash stored in {path}")
