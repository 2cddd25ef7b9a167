"""One error hierarchy for the whole hub.

Callers decide what to do by class, never by message text:
- ``InvalidMessage``: bad input; the record goes to a DLQ with the reason, the stream goes on.
- ``RetriableError``: a transient failure (broker, network, remote 5xx); retry with backoff.
- ``FatalError``: the process cannot continue (e.g. a lost transactional producer).
- ``ConfigError``: a setting or CLI argument is wrong; the message says what to fix, in one line.
"""

from __future__ import annotations

from pydantic import ValidationError


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class InvalidMessage(HubError):
    """A message cannot be decoded or validated; it belongs in a DLQ, with this reason."""


class SerializationError(InvalidMessage):
    """Bytes that are no valid record of a known schema (bad framing, unknown schema, truncated)."""


class RetriableError(HubError):
    """A transient failure: the same operation may succeed if tried again later."""


class FatalError(HubError):
    """The process cannot continue safely and must stop."""


class UnusableSnapshot(HubError):
    """A stored snapshot of a stage's state cannot be loaded (unknown format, a chunk missing or
    corrupt): the caller rebuilds the state from its journal instead."""


class AuthorizationError(FatalError):
    """The broker refused an operation: this client's principal has no ACL allowing it."""


class ConfigError(HubError):
    """A setting or argument is wrong; ``str(err)`` is one line that says what to fix."""


class BrokerError(HubError):
    """The local broker could not be fetched, started or stopped; the message says what to do."""


def explain(err: ValidationError, limit: int = 5) -> str:
    """Pydantic's errors as one line, ``field.path: message; ...``, without the input values:
    the reason lands in DLQ headers and logs, which must not carry names or NIPs."""
    errors = err.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
             for e in errors[:limit]]
    more = len(errors) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
