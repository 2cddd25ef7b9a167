"""Who hears about which alert, and on which channels: the routes file, validated, and routing.

The routes file (YAML, ``NETRAL_ALERTS_ROUTES_FILE``) lists recipients. The national Satgas
(``scope: national``) receives every alert; a provincial Satgas (``scope: province``) the alerts
of its province (the first two digits of the Kemendagri region code, the alert's
``province_code``); an agency (``scope: agency``) the alerts naming it (``agency_name``, compared
without case or extra spaces). ``min_severity`` drops what a recipient does not want.

Secrets (webhook HMAC keys, a chat bot URL that carries its token) may be written as
``env:VARIABLE`` so the file itself holds none; they are resolved when the file is loaded.

Loading is the only I/O here; :func:`route` is a pure function of the routes and the alert.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from schemas import regions
from schemas.errors import ConfigError, explain
from schemas.models.enums import Severity
from schemas.models.hub import Alert

SEVERITY_RANK: Mapping[Severity, int] = {Severity.INFO: 0, Severity.WARNING: 1,
                                         Severity.CRITICAL: 2}
ENV_PREFIX = "env:"
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


def _spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Spec):
    """JSON POST signed with HMAC-SHA256 (``X-Netral-Signature``) under this recipient's secret."""

    type: Literal["webhook"]
    name: Slug | None = None
    url: HttpUrl
    secret: SecretStr = Field(min_length=16)

    @property
    def key(self) -> str:
        return self.name or self.type


class EmailChannel(_Spec):
    """A multipart (plain text + HTML) mail through the SMTP server of the settings."""

    type: Literal["email"]
    name: Slug | None = None
    to: Annotated[tuple[Email, ...], Field(min_length=1, max_length=50)]

    @property
    def key(self) -> str:
        return self.name or self.type


class ChatChannel(_Spec):
    """A bot-style webhook taking Telegram's ``sendMessage`` JSON (``chat_id``, ``text``)."""

    type: Literal["chat"]
    name: Slug | None = None
    url: SecretStr  # e.g. https://api.telegram.org/bot<token>/sendMessage: the token is a secret
    chat_id: str | int

    @property
    def key(self) -> str:
        return self.name or self.type

    @model_validator(mode="after")
    def _url(self) -> ChatChannel:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.url.get_secret_value()):
            raise ValueError("url must be an http:// or https:// URL")
        return self


Channel = Annotated[WebhookChannel | EmailChannel | ChatChannel, Field(discriminator="type")]


class Recipient(_Spec):
    """One Satgas or agency, what it receives, and where."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    scope: Literal["national", "province", "agency"]
    province: str | None = None
    agency: str | None = Field(None, min_length=1, max_length=200)
    min_severity: Severity = Severity.INFO
    channels: Annotated[tuple[Channel, ...], Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _scope(self) -> Recipient:
        if self.scope == "province":
            if self.province is None:
                raise ValueError("a province recipient needs province: <2-digit code>")
            region = regions.regions().get(self.province)
            if region is None or region.level is not regions.RegionLevel.PROVINCE:
                raise ValueError(f"province {self.province!r} is no Kemendagri province code")
        elif self.province is not None:
            raise ValueError(f"province is only for scope province, not {self.scope}")
        if (self.scope == "agency") != (self.agency is not None):
            raise ValueError("agency: <name> goes with scope agency, and only with it")
        keys = [c.key for c in self.channels]
        if len(set(keys)) != len(keys):
            raise ValueError(f"channel names must be unique within a recipient (got {keys}); "
                             "give repeated types a name:")
        return self

    @property
    def national(self) -> bool:
        """Only the national Satgas sees NIPs and names in clear."""
        return self.scope == "national"

    def wants(self, alert: Alert) -> bool:
        """Whether this recipient receives ``alert`` (scope and minimum severity)."""
        if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return False
        if self.scope == "national":
            return True
        if self.scope == "province":
            return alert.province_code == self.province
        assert self.agency is not None
        return alert.agency_name is not None and _spaces(alert.agency_name) == _spaces(self.agency)


class Routes(_Spec):
    """The whole routes file."""

    version: Literal[1] = 1
    recipients: tuple[Recipient, ...]

    @model_validator(mode="after")
    def _unique(self) -> Routes:
        if not self.recipients:  # here, not min_length: a bad recipient is then the only error
            raise ValueError("recipients: the file lists nobody")
        ids = [r.id for r in self.recipients]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"recipient ids must be unique; repeated: {', '.join(dup)}")
        return self

    def get(self, recipient_id: str) -> Recipient | None:
        return next((r for r in self.recipients if r.id == recipient_id), None)


def route(routes: Routes, alert: Alert) -> list[Recipient]:
    """The recipients of ``alert``, in file order (pure)."""
    return [r for r in routes.recipients if r.wants(alert)]


def _resolve_env(node: object, environ: Mapping[str, str], where: str = "") -> object:
    """Replace every ``env:NAME`` string with the variable's value (ConfigError if unset)."""
    if isinstance(node, dict):
        return {k: _resolve_env(v, environ, f"{where}.{k}" if where else str(k))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, environ, f"{where}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith(ENV_PREFIX):
        name = node[len(ENV_PREFIX):]
        value = environ.get(name)
        if not value:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return value
    return node


def parse_routes(text: str, *, source: str = "routes file",
                 environ: Mapping[str, str] | None = None) -> Routes:
    """Validate a routes document; ConfigError with one line naming the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}: "
                          f"{getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'recipients:' at the top")
    try:
        resolved = _resolve_env(data, os.environ if environ is None else environ)
        return Routes.model_validate(resolved)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    except ValidationError as err:
        raise ConfigError(f"{source}: {explain(err, limit=1)}") from None


def load_routes(path: Path, *, environ: Mapping[str, str] | None = None) -> Routes:
    """Read and validate the routes file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"routes file {path}: cannot read it ({err.strerror or err}); "
                          "set NETRAL_ALERTS_ROUTES_FILE") from None
    return parse_routes(text, source=f"routes file {path}", environ=environ)


def example_routes_file() -> Path:
    """The example shipped for the local demo (a local receiver, a local SMTP catcher)."""
    from importlib import resources

    return Path(str(resources.files("sinks.alerts").joinpath("data/routes.example.yaml")))
