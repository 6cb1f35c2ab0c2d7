"""The one wait-until helper of the project.

Everything that waits for a condition (a pod Ready, a port open, a process
gone) goes through :func:`wait_until`, so timeouts behave and read the same
everywhere. Kubernetes waits that can use a watch do so; this helper is for
conditions that can only be polled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

__all__: list[str] = []  # not an activity module


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline."""

    def __init__(self, description: str, timeout: float, last_error: BaseException | None):
        detail = f" (last error: {last_error})" if last_error else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {description}{detail}")
        self.description = description
        self.timeout = timeout
        self.last_error = last_error


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    description: str,
    interval: float = 0.1,
    max_interval: float = 1.0,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    The poll interval starts at ``interval`` and doubles up to ``max_interval``,
    so quick conditions return quickly and slow ones do not hammer anything.
    Exceptions of the types in ``ignore`` count as "not yet" (the last one is
    reported on timeout); any other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignore as exc:
            last_error = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(description, timeout, last_error)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, max_interval)
