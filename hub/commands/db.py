"""``netral db``: the national record's schema, changed only through Alembic migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from sinks.sql import migrate
from sinks.sql.engine import describe_url

from ..settings import get_settings

db_app = typer.Typer(help="The national record's SQL database (SQLite by default, or "
                     "PostgreSQL via NETRAL_DATABASE_URL).", no_args_is_help=True)
console = Console()


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Create or migrate the tables in one transaction; safe to run again."""
    url = get_settings().resolved_database_url()
    before = migrate.current(url)
    after = migrate.upgrade(url, revision)
    change = "already at" if before == after else f"{before or 'empty'} ->"
    console.print(f"database {describe_url(url)}: {change} revision [bold]{after}[/]")


@db_app.command("current")
def current() -> None:
    """Show the database's revision; exit 3 if it is not the one this hub needs."""
    url = get_settings().resolved_database_url()
    at, head = migrate.current(url), migrate.head_revision()
    state = "[green]up to date[/]" if at == head else f"[yellow]needs {head}[/]: netral db upgrade"
    console.print(f"database {describe_url(url)}: revision {at or '(none)'} ({state})")
    if at != head:
        raise typer.Exit(3)
