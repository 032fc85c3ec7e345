"""What every sink shares: an HTTP client, an outcome type, and how a response reads.

A sink turns one outbox message into one HTTP request. It never raises for a failed
delivery: it returns a ``SendResult`` the delivery worker turns into a retry or a dead
letter. Connection errors, timeouts, 5xx, 408 and 429 are transient (the receiver may
answer later); any other 4xx is permanent: sending the same bytes again cannot help.
Error texts name the sink and the status, never the URL (a Slack webhook URL is itself
a secret) nor any credential.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from monitor.alerts.records import OutboxMessage
from monitor.config.alerts import SinkConfig

# The longest Retry-After we honour: a receiver asking for a day is treated as broken.
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one delivery attempt went. ``retry_after`` (seconds) is the receiver's wish;
    ``permanent`` says that retrying cannot succeed."""

    ok: bool
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False


class Sink(ABC):
    """A delivery target built from its ``[[alerts.sinks]]`` table."""

    def __init__(
        self, config: SinkConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._client = httpx.AsyncClient(
            timeout=config.timeout.total_seconds(), transport=transport, follow_redirects=False
        )

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    async def send(self, message: OutboxMessage) -> SendResult:
        """Deliver ``message`` once."""

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(
        self, url: str, *, content: bytes, headers: dict[str, str], auth: httpx.Auth | None = None
    ) -> SendResult:
        try:
            response = await self._client.post(
                url,
                content=content,
                headers=headers,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            return SendResult(False, f"sink {self.name!r}: timed out")
        except httpx.HTTPError as exc:
            return SendResult(False, f"sink {self.name!r}: {type(exc).__name__}")
        return self.read_response(response)

    def read_response(self, response: httpx.Response) -> SendResult:
        """2xx is delivered; anything else is a failure, with Retry-After when given."""
        if response.is_success:
            return SendResult(True)
        return SendResult(
            False,
            f"sink {self.name!r}: HTTP {response.status_code}",
            retry_after(response.headers.get("retry-after")),
            permanent=is_permanent(response.status_code),
        )


def is_permanent(status_code: int) -> bool:
    """A 4xx other than 408 (request timeout) and 429 (rate limited): the request itself
    is refused. Redirects (not followed) count as permanent too: the URL is wrong."""
    return 300 <= status_code < 500 and status_code not in (408, 429)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), bounded."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
