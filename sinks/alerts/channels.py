"""The channels (I/O, kept thin): webhook, email over SMTP, chat through a bot-style webhook.

Each channel makes one attempt in ``_attempt``; :meth:`ChannelSender.send` retries transient
failures (timeouts, connection errors, HTTP 408/429/5xx, SMTP 4xx) with exponential backoff and
jitter (tenacity) and gives up at once on a refusal (other HTTP 4xx, SMTP 5xx), which retrying
cannot fix. Either way the caller gets the attempts made, to record in the delivery ledger.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib
import httpx
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from schemas.errors import HubError, RetriableError

from .messages import Message
from .routes import ChatChannel, EmailChannel, WebhookChannel
from .signing import (
    DELIVERY_HEADER,
    RECIPIENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

log = logging.getLogger(__name__)
USER_AGENT = "netral-alerts/1"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryError(RetriableError):
    """This attempt failed for a reason that may pass (timeout, 5xx, connection refused)."""


class DeliveryRefused(HubError):
    """The far side refused the message for good (e.g. HTTP 400/401/404, SMTP 550)."""


@dataclass(frozen=True)
class DeliveryFailed(Exception):
    """Raised by ``send`` after the last attempt (or a refusal): what to record."""

    attempts: int
    reason: str


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery is tried before it is recorded as failed."""

    max_attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 30.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP server every email channel sends through."""

    host: str = "127.0.0.1"
    port: int = 1025
    mail_from: str = "netral-alerts@localhost"
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"


class ChannelSender(ABC):
    """One recipient's channel; ``send`` returns the attempts it took or raises DeliveryFailed."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], datetime]) -> None:
        self.policy = policy
        self.clock = clock

    @abstractmethod
    async def _attempt(self, message: Message) -> None:
        """One try; DeliveryError to retry, DeliveryRefused to stop."""

    async def send(self, message: Message) -> int:
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=wait_exponential_jitter(initial=self.policy.initial_s, max=self.policy.max_s),
            retry=retry_if_exception_type(DeliveryError), reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    await self._attempt(message)
        except RetryError as err:
            last = err.last_attempt.exception()
            raise DeliveryFailed(attempts, f"gave up after {attempts} attempts: {last}") from last
        except DeliveryRefused as err:
            raise DeliveryFailed(attempts, f"refused: {err}") from err
        return attempts


def _http_error(err: httpx.HTTPError) -> DeliveryError:
    return DeliveryError(f"{type(err).__name__}: {err}")


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    reason = f"HTTP {response.status_code} from {response.request.url.host}"
    if response.status_code in RETRY_STATUSES:
        raise DeliveryError(reason)
    raise DeliveryRefused(reason)


class WebhookSender(ChannelSender):
    """POST the JSON payload, signed with the recipient's secret, with a timestamp header."""

    def __init__(self, spec: WebhookChannel, http: httpx.AsyncClient, policy: RetryPolicy,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(policy, clock)
        self.spec = spec
        self.http = http
        self.secret = spec.secret.get_secret_value().encode()

    async def _attempt(self, message: Message) -> None:
        sent_at = self.clock().astimezone(UTC).replace(microsecond=0)
        body = json.dumps({**message.payload, "delivery_id": message.delivery_id,
                           "recipient": message.recipient_id, "sent_at": sent_at.isoformat()},
                          ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   SIGNATURE_HEADER: signature(self.secret, body),
                   TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
                   DELIVERY_HEADER: message.delivery_id, RECIPIENT_HEADER: message.recipient_id}
        try:
            response = await self.http.post(self.spec.url, content=body, headers=headers,
                                            timeout=self.policy.timeout_s)
        except httpx.HTTPError as err:
            raise _http_error(err) from err
        _check(response)


class ChatSender(ChannelSender):
    """Telegram-style ``sendMessage``: ``{"chat_id", "text", "parse_mode": "HTML"}``."""

    def __init__(self, spec: ChatChannel, http: httpx.AsyncClient, policy: RetryPolicy,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(policy, clock)
        self.spec = spec
        self.http = http

    async def _attempt(self, message: Message) -> None:
        body = {"chat_id": self.spec.chat_id, "text": message.chat_text, "parse_mode": "HTML",
                "disable_web_page_preview": True}
        try:
            response = await self.http.post(self.spec.url.get_secret_value(), json=body,
                                            headers={"User-Agent": USER_AGENT},
                                            timeout=self.policy.timeout_s)
        except httpx.HTTPError as err:
            raise _http_error(err) from err
        _check(response)
        try:
            answer = response.json()
        except ValueError as err:
            raise DeliveryRefused("chat bot answered no JSON") from err
        if isinstance(answer, dict) and answer.get("ok") is False:  # Telegram's error shape
            raise DeliveryRefused(f"chat bot refused: {answer.get('description', '?')}")


class EmailSender(ChannelSender):
    """A multipart/alternative mail (plain text, then HTML) over SMTP (aiosmtplib)."""

    def __init__(self, spec: EmailChannel, smtp: SmtpConfig, policy: RetryPolicy,
                 clock: Callable[[], datetime]) -> None:
        super().__init__(policy, clock)
        self.spec = spec
        self.smtp = smtp

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.smtp.mail_from
        mail["To"] = ", ".join(self.spec.to)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(self.clock().timestamp(), usegmt=True)
        mail["Message-ID"] = f"<{message.delivery_id}@netral>"  # stable: a repeat is visible
        mail[DELIVERY_HEADER] = message.delivery_id
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    async def _attempt(self, message: Message) -> None:
        password = self.smtp.password.get_secret_value() if self.smtp.password else None
        try:
            await aiosmtplib.send(
                self.build(message), hostname=self.smtp.host, port=self.smtp.port,
                username=self.smtp.username, password=password,
                use_tls=self.smtp.security == "tls", start_tls=self.smtp.security == "starttls",
                timeout=self.policy.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as err:
            reason = f"SMTP {err.code}: {err.message}"
            if 400 <= err.code < 500:
                raise DeliveryError(reason) from err
            raise DeliveryRefused(reason) from err
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise DeliveryRefused(f"SMTP refused every recipient: {err}") from err
        except (aiosmtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {type(err).__name__}: {err}") from err
