"""Turn one SIASN order into its outcome: confirmed, already in effect, or failed for good.

The adapter never raises for an order SIASN would not take: that becomes a FAILED result (which
the runner sends to the DLQ with an alert), so the stream goes on. It does raise for what no order
can survive (bad credentials, a lost producer): ``ConfigError`` / ``FatalError`` stop the process
before any offset is committed, and the orders wait in Kafka for a fixed adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from schemas.errors import HubError
from schemas.models.enums import OrderAction, OrderOutcome
from schemas.models.hub import SiasnOrder, SiasnOrderResult
from schemas.nip import mask_nip

from .client import SiasnGaveUp, SiasnPort, SiasnRejected

log = logging.getLogger(__name__)
MAX_DETAIL = 1000


class SiasnOrderFailed(HubError):
    """An order SIASN did not carry out after the last retry (the DLQ header's error class)."""


def _now() -> datetime:
    return datetime.now(UTC)


class SiasnAdapter:
    """Apply orders through a ``SiasnPort``; the port's idempotency makes a replay harmless."""

    def __init__(self, port: SiasnPort, clock: Callable[[], datetime] = _now) -> None:
        self.port = port
        self.clock = clock

    async def apply(self, order: SiasnOrder) -> SiasnOrderResult:
        """The outcome of ``order``; raises only what must stop the adapter."""
        call = self.port.block if order.action is OrderAction.BLOCK else self.port.unblock
        try:
            reply = await call(order)
        except (SiasnGaveUp, SiasnRejected) as err:
            log.error("SIASN order %s (%s %s) FAILED after %d attempts: %s", order.order_id,
                      order.action, mask_nip(order.nip), err.attempts, err)
            return self._result(order, OrderOutcome.FAILED, err.attempts,
                                f"{type(err).__name__}: {err}")
        outcome = (OrderOutcome.ALREADY_IN_EFFECT if reply.already_in_effect
                   else OrderOutcome.CONFIRMED)
        return self._result(order, outcome, reply.attempts, reply.detail)

    def _result(self, order: SiasnOrder, outcome: OrderOutcome, attempts: int,
                detail: str) -> SiasnOrderResult:
        return SiasnOrderResult(
            order_id=order.order_id, case_id=order.case_id, nip=order.nip, action=order.action,
            outcome=outcome, at=self.clock(), attempts=max(attempts, 1),
            detail=detail[:MAX_DETAIL] or None,
        )
