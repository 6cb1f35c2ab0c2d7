"""One inference request, sent and classified the same way everywhere.

The availability monitor, the NLB probes and the validations all call
:func:`send` so "a failed request" means the same thing in every report
(see :mod:`chaosray.metrics` for the definition).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from chaoslib.exceptions import ActivityFailed

from chaosray.metrics import Request

__all__: list[str] = []  # helpers, not activities

DEFAULT_EXPECT_STATUS = tuple(range(200, 300))


@dataclass(frozen=True)
class InferenceTarget:
    """Where and what to send: validated once, before anything is sent."""

    url: str
    method: str = "POST"
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 2.0
    expect_status: tuple[int, ...] = DEFAULT_EXPECT_STATUS
    expect_body_contains: str | None = None

    @classmethod
    def build(
        cls,
        url: str,
        method: str = "POST",
        payload: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
        expect_status: list[int] | None = None,
        expect_body_contains: str | None = None,
    ) -> InferenceTarget:
        """Validate user input; raise ``ActivityFailed`` naming what is wrong."""
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ActivityFailed(
                f"inference URL {url!r} is not an http(s) URL with a host "
                "(expected for example http://my-nlb.example.com/predict)"
            )
        method = (method or "").upper()
        if method not in ("GET", "POST", "PUT"):
            raise ActivityFailed(f"HTTP method {method!r} is not one of GET, POST, PUT")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ActivityFailed(
                f"request timeout must be a positive number of seconds, got {timeout!r}"
            )
        if isinstance(payload, str) and payload.strip().startswith(("{", "[")):
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                raise ActivityFailed(f"payload looks like JSON but does not parse: {exc}") from None
        statuses = tuple(expect_status) if expect_status else DEFAULT_EXPECT_STATUS
        if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            raise ActivityFailed(
                f"expect_status must list HTTP status codes, got {expect_status!r}"
            )
        return cls(
            url,
            method,
            payload,
            dict(headers or {}),
            float(timeout),
            statuses,
            expect_body_contains,
        )


def send(session: requests.Session, target: InferenceTarget, sent: float | None = None) -> Request:
    """Send one request and classify it. Never raises for network errors:
    they are failed requests, with the error named."""
    sent_at = time.time() if sent is None else sent
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"headers": target.headers, "timeout": target.timeout}
    if target.payload is not None and target.method != "GET":
        if isinstance(target.payload, dict | list):
            kwargs["json"] = target.payload
        else:
            kwargs["data"] = target.payload
    try:
        answer = session.request(target.method, target.url, **kwargs)
        latency = time.perf_counter() - started
    except requests.Timeout:
        return Request(sent_at, False, None, None, f"timeout after {target.timeout:g}s")
    except requests.ConnectionError as exc:
        return Request(sent_at, False, None, None, f"connection error: {_short(exc)}")
    except requests.RequestException as exc:
        return Request(sent_at, False, None, None, f"request error: {_short(exc)}")
    ok = answer.status_code in target.expect_status
    error = None if ok else f"HTTP {answer.status_code}"
    if (
        ok
        and target.expect_body_contains is not None
        and target.expect_body_contains not in answer.text
    ):
        ok, error = False, f"body does not contain {target.expect_body_contains!r}"
    return Request(sent_at, ok, latency, answer.status_code, error)


def is_transient_failure(result: Request) -> bool:
    """Worth a retry: no answer at all, or a 5xx/429 answer."""
    return not result.ok and (result.status is None or result.status >= 500 or result.status == 429)


def _short(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, without the noise."""
    reason: BaseException = exc
    while reason.__context__ is not None and reason.__context__ is not reason:
        reason = reason.__context__
    text = str(reason) or type(reason).__name__
    return text if len(text) < 200 else text[:197] + "..."
