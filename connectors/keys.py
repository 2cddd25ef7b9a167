"""API keys for HTTP ingest: one or more per agency, stored only as SHA-256 hashes.

The keys file is YAML, ``{agency: [sha256-hex, ...]}``; a key is shown once when created and never
stored in clear. Lookups compare hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import yaml

from schemas.errors import ConfigError
from schemas.topics import Agency

PREFIX = "ntrl_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Which agency a presented key belongs to."""

    def __init__(self, hashes: dict[Agency, list[str]]) -> None:
        self._hashes = hashes

    @classmethod
    def load(cls, path: Path) -> KeyStore:
        if not path.exists():
            return cls({})
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            return cls({Agency(a): [str(h) for h in hs] for a, hs in raw.items()})
        except (yaml.YAMLError, ValueError, AttributeError, TypeError) as err:
            raise ConfigError(f"API keys file {path} is not valid ({err}); "
                              f"expected {{agency: [sha256 hex, ...]}}") from None

    def agency_of(self, key: str) -> Agency | None:
        """The agency owning ``key``, or None; every stored hash is compared (constant time)."""
        presented = hash_key(key)
        owner = None
        for agency, hashes in self._hashes.items():
            for stored in hashes:
                if hmac.compare_digest(presented, stored):
                    owner = agency
        return owner


def add_key(path: Path, agency: Agency) -> str:
    """Create a new key for ``agency``, store its hash in ``path``, return the key (once)."""
    key = PREFIX + secrets.token_urlsafe(32)
    raw = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    raw.setdefault(agency.value, []).append(hash_key(key))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=True))
    path.chmod(0o600)
    return key
