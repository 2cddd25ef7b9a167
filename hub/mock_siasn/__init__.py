"""A faithful stand-in for SIASN, which the hub cannot reach in development or tests.

Same auth shape as the real service (a gateway OAuth2 token plus an SSO token on every call, base
path ``/apisiasn/1.0``), block/unblock/status per NIP with idempotency keys, and fault injection,
so the adapter can be proven exactly-once in effect without a real endpoint.
"""

from .app import MockConfig, create_app

__all__ = ["MockConfig", "create_app"]
