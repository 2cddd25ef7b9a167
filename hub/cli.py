"""``netral``: the operator's command line. Expected failures print one line and exit non-zero."""

from __future__ import annotations

import sys

import typer

from schemas.errors import ConfigError, HubError

from .cli_calendar import calendar_app
from .commands.alerts import alerts_app
from .commands.api import api, api_key_app
from .commands.asyncapi import asyncapi
from .commands.audit import audit_app
from .commands.broker import broker_app
from .commands.cases import cases_app
from .commands.connector import connector_app
from .commands.db import db_app
from .commands.dlq import dlq_app
from .commands.export import export
from .commands.file_import import import_
from .commands.lag import lag
from .commands.mock_siasn import mock_siasn
from .commands.principals import principals_app
from .commands.purge import purge
from .commands.replay import replay
from .commands.siasn_adapter import siasn_adapter
from .commands.simulate import simulate_cmd
from .commands.sql_sink import sql_sink
from .commands.topics import topics_app
from .commands.up import demo, up
from .commands.worker import worker
from .logs import configure
from .settings import get_settings

app = typer.Typer(
    name="netral",
    help="netral hub: joins Bawaslu, BKN, Kemendagri, KemenPAN-RB and PPK data on ASN neutrality "
    "cases into one national record, on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(connector_app, name="connector")
app.add_typer(calendar_app, name="calendar")
app.add_typer(db_app, name="db")
app.add_typer(cases_app, name="cases")
app.add_typer(alerts_app, name="alerts")
app.command("sql-sink")(sql_sink)
app.command("worker")(worker)
app.command("replay")(replay)
app.command("up")(up)
app.command("demo")(demo)
app.command("asyncapi")(asyncapi)
app.command("api")(api)
app.command("import")(import_)
app.command("export")(export)
app.command("lag")(lag)
app.command("simulate")(simulate_cmd)
app.command("mock-siasn")(mock_siasn)
app.command("siasn-adapter")(siasn_adapter)
app.add_typer(api_key_app, name="api-key")
app.add_typer(principals_app, name="principals")
app.command("purge")(purge)
app.add_typer(audit_app, name="audit")


def main() -> None:
    """Console-script entry point."""
    try:
        settings = get_settings()
        configure(settings.log_level, settings.log_format, settings.log_client_debug)
        app()
    except ConfigError as err:
        print(f"netral: {err}", file=sys.stderr)
        sys.exit(2)
    except HubError as err:
        print(f"netral: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
