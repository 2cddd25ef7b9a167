"""``netral siasn-adapter``: apply blocking orders to SIASN until Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import typer
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError
from schemas.topics import ALERTS, ORDERS_SIASN, ORDERS_SIASN_RESULTS, DlqStage, dlq_topic
from sinks.siasn.client import HttpSiasnClient, SiasnConfig
from sinks.siasn.runner import NATIONAL_REGION, AdapterTopics, RunnerOptions, run_adapter

from ..bootstrap import codec, kafka
from ..logs import configure
from ..settings import get_settings


class SiasnSettings(BaseSettings):
    """``NETRAL_SIASN_*``. Interim: these belong in ``NetralSettings`` (same variable names)."""

    model_config = SettingsConfigDict(env_prefix="NETRAL_SIASN_", extra="ignore",
                                      env_ignore_empty=True, frozen=True)

    url: str = Field("http://127.0.0.1:8780", description="SIASN base URL (scheme and host)")
    api_path: str = "/apisiasn/1.0"
    gateway_token_url: str | None = None
    sso_token_url: str | None = None
    client_id: str = "netral-dev"
    client_secret: SecretStr = SecretStr("netral-dev-secret")
    username: str = "netral-operator"
    password: SecretStr = SecretStr("netral-dev-password")
    sso_client_id: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    breaker_threshold: int = Field(5, ge=1)
    breaker_reset_s: float = Field(30.0, gt=0)
    max_hold_s: float = Field(1800.0, gt=0)
    token_refresh_margin_s: float = Field(60.0, ge=0)
    group_id: str = "netral-siasn-adapter"
    transactional_id: str | None = None
    batch_size: int = Field(100, ge=1, le=10_000)
    concurrency: int = Field(8, ge=1, le=256)
    alert_region: str = NATIONAL_REGION

    def client_config(self) -> SiasnConfig:
        return SiasnConfig(
            base_url=self.url, api_path=self.api_path,
            gateway_token_url=self.gateway_token_url, sso_token_url=self.sso_token_url,
            client_id=self.client_id, client_secret=self.client_secret,
            username=self.username, password=self.password, sso_client_id=self.sso_client_id,
            timeout_s=self.timeout_s, max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s, backoff_max_s=self.backoff_max_s,
            breaker_threshold=self.breaker_threshold, breaker_reset_s=self.breaker_reset_s,
            max_hold_s=self.max_hold_s, token_refresh_margin_s=self.token_refresh_margin_s,
        )


DEV_SECRETS = ("netral-dev-secret", "netral-dev-password")  # the mock's; never valid in prod


def _siasn_settings(env: str) -> tuple[SiasnSettings, SiasnConfig]:
    try:
        siasn = SiasnSettings()
        config = siasn.client_config()
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"setting NETRAL_SIASN_{field.upper()} is invalid: {first['msg']}"
                          ) from None
    if env == "prod" and {siasn.client_secret.get_secret_value(),
                          siasn.password.get_secret_value()} & set(DEV_SECRETS):
        raise ConfigError("NETRAL_SIASN_CLIENT_SECRET / NETRAL_SIASN_PASSWORD still hold the "
                          "mock's dev values: set the real SIASN credentials")
    return siasn, config


def siasn_adapter(
    orders_topic: str = typer.Option(ORDERS_SIASN, help="Orders to apply."),
    results_topic: str = typer.Option(ORDERS_SIASN_RESULTS, help="Where outcomes go."),
    dlq: str = typer.Option(dlq_topic(DlqStage.SIASN), help="Where failed orders go."),
    alerts_topic: str = typer.Option(ALERTS, help="Where failure alerts go."),
) -> None:
    """Apply SIASN block/unblock orders, recording each outcome with its offset (exactly once)."""
    settings = get_settings()
    configure(settings.log_level, settings.log_format, settings.log_client_debug)
    siasn, client_config = _siasn_settings(settings.env)
    conn = kafka(settings, "netral-siasn-adapter")
    options = RunnerOptions(
        transactional_id=siasn.transactional_id, batch_size=siasn.batch_size,
        concurrency=siasn.concurrency, alert_region=siasn.alert_region,
        topics=AdapterTopics(orders=orders_topic, results=results_topic, dlq=dlq,
                             alerts=alerts_topic),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with HttpSiasnClient(client_config) as client:
            stats = await run_adapter(conn, client, codec(settings), siasn.group_id, stop,
                                      options=options)
        typer.echo(f"siasn-adapter: {stats.orders} orders, {stats.confirmed} confirmed, "
                   f"{stats.already_in_effect} already in effect, {stats.failed} failed, "
                   f"{stats.dead_letters} dead letters")

    asyncio.run(main())
