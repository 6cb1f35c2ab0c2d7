"""The one retry/backoff helper of the project, for *reads*.

Reads (list, get, dashboard queries) are retried on transient errors: HTTP
5xx and 429 from the API server, timeouts, connection resets. Actions are
never retried blindly: deleting or evicting twice is not the same as once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

__all__: list[str] = []  # helper, not an activity

logger = logging.getLogger("chaostoolkit")

T = TypeVar("T")

TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes ConnectionResetError / ConnectionRefusedError
    TimeoutError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)


def is_transient(exc: BaseException) -> bool:
    """Worth another try: a 5xx or 429 answer, a timeout, a dropped connection."""
    if isinstance(exc, ApiException):
        return exc.status is not None and (exc.status >= 500 or exc.status == 429)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, TRANSIENT_EXCEPTIONS)


def retry_read(
    read: Callable[[], T],
    *,
    description: str,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 2.0,
) -> T:
    """Call ``read``; on a transient error try again with exponential backoff
    and jitter, up to ``attempts`` calls in all. Other errors propagate at once."""
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            return read()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            logger.debug(f"{description}: transient error ({exc}); retry {attempt}/{attempts - 1}")
            time.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
