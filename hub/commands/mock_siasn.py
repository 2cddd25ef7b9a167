"""``netral mock-siasn``: run the mock SIASN server for development, demos and tests."""

from __future__ import annotations

import typer

from schemas.errors import ConfigError


def mock_siasn(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8780, min=0, max=65535, help="TCP port."),
    error_rate: float = typer.Option(0.0, min=0.0, max=1.0,
                                     help="Fraction of API calls answered 500/503, before any "
                                          "effect."),
    latency_ms: int = typer.Option(0, min=0, help="Added to every API call."),
    outage_seconds: float = typer.Option(0.0, min=0.0,
                                         help="Answer 503 to every API call for this long from "
                                              "start (POST /_test/outage?seconds=S starts one "
                                              "later)."),
    seed: int = typer.Option(0, help="Seed of the fault RNG, for reproducible runs."),
    lost_reply_rate: float = typer.Option(0.0, min=0.0, max=1.0,
                                          help="Fraction of writes applied but answered 500 "
                                               "(a lost reply)."),
    gateway_token_ttl: int = typer.Option(3600, min=1, help="Gateway token lifetime, seconds."),
    sso_token_ttl: int = typer.Option(1800, min=1, help="SSO token lifetime, seconds."),
    client_id: str = typer.Option("netral-dev", help="Gateway client id the mock accepts."),
    client_secret: str = typer.Option("netral-dev-secret", help="Gateway client secret."),
    username: str = typer.Option("netral-operator", help="SSO user the mock accepts."),
    password: str = typer.Option("netral-dev-password", help="SSO password."),
) -> None:
    """Serve a mock SIASN (/apisiasn/1.0, gateway + SSO tokens, idempotent block/unblock)."""
    import uvicorn  # imported here: only this command needs a server

    from ..mock_siasn import MockConfig, create_app

    try:
        config = MockConfig(
            client_id=client_id, client_secret=client_secret, username=username,
            password=password, gateway_token_ttl_s=gateway_token_ttl,
            sso_token_ttl_s=sso_token_ttl, error_rate=error_rate,
            lost_reply_rate=lost_reply_rate, latency_ms=latency_ms,
            outage_seconds=outage_seconds, seed=seed,
        )
    except ValueError as err:
        raise ConfigError(f"mock-siasn: {err}") from None
    typer.echo(f"mock SIASN on http://{host}:{port}/apisiasn/1.0 "
               f"(error rate {error_rate:.0%}, latency {latency_ms} ms)")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
