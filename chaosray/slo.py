"""Error-budget burn: what a disruption cost against a service level objective.

Definitions (docs/report-schema.md, "Error budget", repeats them):

- **SLO**: an availability ``target`` (default 0.999) over a ``period``
  (default 30 days), and optionally a latency objective
  ``latency_p99_ms`` (a successful request slower than it is a bad request).
- **Period budget**: ``(1 - target) x period`` seconds: 2,592 s (43.2 min)
  for 99.9 % over 30 days.
- **Budget consumed (seconds)**: the failure-equivalent downtime
  (failed requests x the mean request interval, :mod:`chaosray.metrics`),
  plus slow requests x the same interval when a latency objective is set.
- **Budget consumed (requests)**: failed requests (+ slow ones).
- **Budget share**: consumed seconds / period budget (0.01 = 1 % of the
  month's budget).
- **Burn rate**: the share of bad requests during the disruption (from the
  first disruption to the end of the measurement) divided by the allowed
  share ``1 - target``: 1 spends the budget exactly over the period, 14.4
  spends 2 % of a 30-day budget in an hour.

Pure: data in, data out.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

__all__: list[str] = []  # pure logic, no activities

DEFAULT_TARGET = 0.999
DEFAULT_PERIOD_DAYS = 30.0
DAY_S = 86_400.0


class Slo(TypedDict):
    target: float
    period_days: float
    latency_p99_ms: float | None


class Budget(TypedDict):
    slo: Slo
    period_budget_s: float
    consumed_s: float | None
    consumed_requests: int | None
    failed_requests: int | None
    slow_requests: int | None
    share: float | None  # of the period's budget
    burn_rate: float | None
    burn_rate_span_s: float | None  # the span the burn rate was measured over
    latency_objective_met: bool | None


def number_setting(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def slo(target: Any = None, period_days: Any = None, latency_p99_ms: Any = None) -> Slo:
    """A checked SLO (``ValueError`` naming the bad setting); None or "" take the default."""
    chosen_target = number_setting("slo_target", target)
    chosen_target = DEFAULT_TARGET if chosen_target is None else chosen_target
    if not 0 < chosen_target < 1:
        raise ValueError(f"slo_target is a fraction strictly between 0 and 1, got {target!r}")
    period = number_setting("slo_period_days", period_days)
    period = DEFAULT_PERIOD_DAYS if period is None else period
    if period <= 0:
        raise ValueError(f"slo_period_days must be > 0, got {period_days!r}")
    latency = number_setting("slo_latency_p99_ms", latency_p99_ms)
    if latency is not None and latency <= 0:
        raise ValueError(f"slo_latency_p99_ms must be > 0, got {latency_p99_ms!r}")
    return {"target": chosen_target, "period_days": period, "latency_p99_ms": latency}


def period_budget_s(objective: Slo) -> float:
    return (1.0 - objective["target"]) * objective["period_days"] * DAY_S


def budget(
    objective: Slo,
    *,
    requests: int | None,
    failed: int | None,
    failure_equivalent_downtime_s: float | None,
    p99_ms: float | None = None,
    slow_requests: int | None = None,
    interval_s: float | None = None,
    during_requests: int | None = None,
    during_bad: int | None = None,
    during_span_s: float | None = None,
) -> Budget:
    """The budget a measurement consumed. ``requests``/``failed``/
    ``failure_equivalent_downtime_s``: the availability figures;
    ``slow_requests``: successful requests slower than the latency objective
    (None when not counted); ``interval_s``: the mean request interval, what
    a slow request costs when no request failed; ``during_*``: requests and bad ones from the
    first disruption on, and that span, for the burn rate (None: the whole
    measurement)."""
    allowed = period_budget_s(objective)
    interval = (
        failure_equivalent_downtime_s / failed
        if failed and failure_equivalent_downtime_s is not None
        else interval_s
    )
    consumed_s: float | None = failure_equivalent_downtime_s
    slow = slow_requests if objective["latency_p99_ms"] is not None else None
    if consumed_s is not None and slow:
        consumed_s = consumed_s + slow * interval if interval is not None else None
    consumed_requests = None if failed is None else failed + (slow or 0)
    if during_requests is None:
        during_requests, during_bad = requests, consumed_requests
    burn = (
        (during_bad or 0) / during_requests / (1.0 - objective["target"])
        if during_requests
        else None
    )
    latency_met = (
        None
        if objective["latency_p99_ms"] is None or p99_ms is None
        else p99_ms <= objective["latency_p99_ms"]
    )
    return {
        "slo": dict(objective),  # type: ignore[typeddict-item]
        "period_budget_s": allowed,
        "consumed_s": consumed_s,
        "consumed_requests": consumed_requests,
        "failed_requests": failed,
        "slow_requests": slow,
        "share": consumed_s / allowed if consumed_s is not None else None,
        "burn_rate": burn,
        "burn_rate_span_s": during_span_s,
        "latency_objective_met": latency_met,
    }


def total(budgets: list[Budget]) -> dict[str, Any] | None:
    """The suite's sum of its scenarios' budgets (None when none has one)."""
    known = [b for b in budgets if b["consumed_s"] is not None]
    if not known:
        return None
    consumed = sum(b["consumed_s"] or 0.0 for b in known)
    allowed = known[0]["period_budget_s"]
    return {
        "slo": known[0]["slo"],
        "period_budget_s": allowed,
        "consumed_s": consumed,
        "consumed_requests": sum(b["consumed_requests"] or 0 for b in known),
        "share": consumed / allowed,
        "scenarios": len(known),
    }
