"""Monitoring keys and roles: who may read what of the national record.

A separate keys file from HTTP ingest (``monitor-keys.yaml``): ingest keys publish as an agency,
monitoring keys read. Each entry is ``{hash, role, province?, agency?, label}``; the key itself is
shown once by ``netral api-key add --role ...`` and stored only as its SHA-256 hash. Lookups
compare every stored hash in constant time (the same :func:`connectors.keys.hash_key`).

Roles:
- ``national``: national Satgas, everything;
- ``province``: a provincial Satgas, the cases and alerts of its province only;
- ``agency``: an agency (by code or name as cases carry it), its own cases only;
- ``public``: aggregate statistics only, never a case or a person.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from connectors.keys import hash_key
from schemas import regions
from schemas.errors import ConfigError
from sinks.sql.queries import Scope

PREFIX = "ntrlm_"


class Role(StrEnum):
    NATIONAL = "national"
    PROVINCE = "province"
    AGENCY = "agency"
    PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    """The caller behind a key: a role, its province or agency, and a label for audit."""

    role: Role
    label: str
    key_hash: str
    province_code: str | None = None
    agency: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope(province_code=self.province_code, agency=self.agency)

    @property
    def sees_cases(self) -> bool:
        return self.role is not Role.PUBLIC

    @property
    def may_review(self) -> bool:
        return self.role in (Role.NATIONAL, Role.PROVINCE)


def _principal(entry: dict[str, Any]) -> Principal:
    role = Role(entry["role"])
    province = entry.get("province")
    agency = entry.get("agency")
    if role is Role.PROVINCE and (province is None or not _is_province(str(province))):
        raise ValueError(f"a province key needs a known province code, not {province!r}")
    if role is Role.AGENCY and not agency:
        raise ValueError("an agency key needs its agency")
    return Principal(role=role, label=str(entry.get("label") or role.value),
                     key_hash=str(entry["hash"]),
                     province_code=str(province) if role is Role.PROVINCE else None,
                     agency=str(agency) if role is Role.AGENCY else None)


def _is_province(code: str) -> bool:
    return regions.is_known(code) and regions.get(code).level is regions.RegionLevel.PROVINCE


class MonitorKeyStore:
    """The principals of the monitoring keys file."""

    def __init__(self, principals: list[Principal]) -> None:
        self._principals = principals

    @classmethod
    def load(cls, path: Path) -> MonitorKeyStore:
        if not path.exists():
            return cls([])
        try:
            raw = yaml.safe_load(path.read_text()) or []
            return cls([_principal(e) for e in raw])
        except (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError) as err:
            raise ConfigError(f"monitoring keys file {path} is not valid ({err}); expected a "
                              f"list of {{hash, role, province?, agency?, label}}") from None

    def by_hash(self, presented: str) -> Principal | None:
        """The principal whose stored hash equals ``presented``; every hash is compared."""
        found = None
        for principal in self._principals:
            if hmac.compare_digest(presented.encode(), principal.key_hash.encode()):
                found = principal
        return found

    def principal_of(self, key: str) -> Principal | None:
        """The principal owning ``key``, or None."""
        return self.by_hash(hash_key(key))


def add_monitor_key(path: Path, role: Role, *, province: str | None = None,
                    agency: str | None = None, label: str | None = None) -> str:
    """Create a key, store its hash with its role in ``path``, return the key (shown once)."""
    if role is Role.PROVINCE and (province is None or not _is_province(province)):
        raise ConfigError(f"--province must be a known two-digit province code (e.g. 31), "
                          f"not {province!r}")
    if role is Role.AGENCY and not agency:
        raise ConfigError("--role agency needs --agency (the agency code or name cases carry)")
    if role not in (Role.PROVINCE,) and province is not None:
        raise ConfigError("--province goes only with --role province")
    if role is not Role.AGENCY and agency is not None:
        raise ConfigError("--agency goes only with --role agency (or without --role, for ingest)")
    key = PREFIX + secrets.token_urlsafe(32)
    entries = (yaml.safe_load(path.read_text()) or []) if path.exists() else []
    entry: dict[str, Any] = {"hash": hash_key(key), "role": role.value,
                             "label": label or _default_label(role, province, agency)}
    if province is not None:
        entry["province"] = province
    if agency is not None:
        entry["agency"] = agency
    entries.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(entries, sort_keys=True, allow_unicode=True))
    path.chmod(0o600)
    return key


def _default_label(role: Role, province: str | None, agency: str | None) -> str:
    if role is Role.PROVINCE:
        return f"satgas-{province}"
    if role is Role.AGENCY:
        return f"agency-{agency}"
    return f"satgas-{role.value}" if role is Role.NATIONAL else "public"
