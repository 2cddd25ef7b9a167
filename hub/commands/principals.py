"""``netral principals``: per-agency and per-service Kafka identities with least-privilege ACLs."""

from __future__ import annotations

import typer
from rich.console import Console

from schemas.errors import ConfigError
from schemas.topics import Agency

from ..bootstrap import kafka
from ..principals import Names, PrincipalAdmin, Service, grants_for, new_password, principal_name
from ..settings import NetralSettings, get_settings

principals_app = typer.Typer(
    help="Kafka identities (SCRAM-SHA-512) and their ACLs; run with the hub admin's credentials.",
    no_args_is_help=True)
console = Console()

AGENCY = typer.Option(None, "--agency", help="An agency: produces only to its raw topic.")
SERVICE = typer.Option(None, "--service", help="A hub service: its own least rights.")
PASSWORD = typer.Option(None, "--password", help="Use this password instead of a generated one "
                        "(at least 12 characters).")


def _names(settings: NetralSettings) -> Names:
    return Names(streams_app_id=settings.worker_app_id, siasn_group=settings.siasn_group_id,
                 alerts_group=settings.alerts_group_id)


def _admin(settings: NetralSettings) -> PrincipalAdmin:
    return PrincipalAdmin(kafka(settings, "netral-principals"))


def _show(user: str, password: str, generated: bool) -> None:
    console.print(f"principal [bold]User:{user}[/] (SCRAM-SHA-512)")
    if generated:
        console.print("password (shown once, store it safely): ", end="")
        # print, not console: rich must not wrap or colour a secret that gets copied
        print(password)
    console.print(f"client settings: NETRAL_KAFKA_SECURITY_PROTOCOL=SASL_SSL "
                  f"NETRAL_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 NETRAL_KAFKA_USERNAME={user} "
                  f"NETRAL_KAFKA_PASSWORD=... NETRAL_KAFKA_CA_FILE=<the CA file>")


@principals_app.command("add")
def add(agency: Agency | None = AGENCY, service: Service | None = SERVICE,
        password: str | None = PASSWORD) -> None:
    """Create the principal and its ACLs; an existing one keeps its password (use rotate)."""
    settings = get_settings()
    user = principal_name(agency, service)
    grants = grants_for(agency, service, _names(settings))
    admin = _admin(settings)
    exists = admin.exists(user)
    if exists and password:
        raise ConfigError(f"principal {user} exists; change its password with "
                          f"`netral principals rotate`")
    secret = password or new_password()
    admin.grant(user, grants)  # first: a failure here leaves no credential nobody has seen
    if not exists:
        admin.set_password(user, secret)
    for g in grants:
        console.print(f"  allow {g.describe()}")
    if exists:
        console.print(f"principal User:{user} already existed: ACLs ensured, password unchanged")
    else:
        _show(user, secret, generated=password is None)


@principals_app.command("rotate")
def rotate(agency: Agency | None = AGENCY, service: Service | None = SERVICE,
           password: str | None = PASSWORD) -> None:
    """Replace the principal's password: new connections must use the new one."""
    settings = get_settings()
    user = principal_name(agency, service)
    admin = _admin(settings)
    if not admin.exists(user):
        raise ConfigError(f"no principal {user}; create it with `netral principals add`")
    secret = password or new_password()
    admin.set_password(user, secret)
    console.print(f"password of User:{user} replaced")
    _show(user, secret, generated=password is None)


@principals_app.command("list")
def list_() -> None:
    """Every SCRAM principal and the ACLs that name it."""
    for info in _admin(get_settings()).list():
        console.print(f"[bold]User:{info.user}[/] {', '.join(info.mechanisms) or '(no SCRAM)'}")
        for grant in info.grants:
            console.print(f"  {grant}")
