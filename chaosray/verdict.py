"""The verdict control: one pass/fail for an experiment, with the reasons.

Chaos Toolkit only fails an experiment on its steady-state hypothesis. A
scenario of ours also fails when one of its actions or measurements fails
(a replacement that never became Ready, a sequence stopped by its minimum, a
drain that timed out), when the load's thresholds failed, or when availability
was worse than the scenario allows. Declare this control **last** among the
experiment's controls, so it sees what the others recorded::

    {"name": "verdict", "provider": {"type": "python", "module": "chaosray.verdict",
     "arguments": {"min_success_rate": 0.95, "max_downtime_s": 30}}}

It writes ``journal["chaosray"]["verdict"] = {"passed": ..., "reasons": [...]}``
and, when the experiment had completed but failed a criterion, sets the
journal's status to ``failed`` (so ``chaos run`` exits 1).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from chaoslib.exceptions import InvalidActivity
from chaoslib.types import Configuration, Experiment, Journal, Secrets

__all__ = ["after_experiment_control", "judge", "validate_control"]

logger = logging.getLogger("chaostoolkit")

MONITOR_FUNC = "monitor_availability"


def _criteria(
    min_success_rate: float | None = None,
    max_downtime_s: float | None = None,
    max_longest_outage_s: float | None = None,
) -> dict[str, float | None]:
    for name, value in (
        ("min_success_rate", min_success_rate),
        ("max_downtime_s", max_downtime_s),
        ("max_longest_outage_s", max_longest_outage_s),
    ):
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if min_success_rate is not None and min_success_rate > 1:
        raise ValueError(f"min_success_rate is a fraction (0..1), got {min_success_rate!r}")
    return {
        "min_success_rate": min_success_rate,
        "max_downtime_s": max_downtime_s,
        "max_longest_outage_s": max_longest_outage_s,
    }


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: the criteria are numbers in range."""
    arguments = control.get("provider", {}).get("arguments", {})
    if "${" in str(arguments):
        return
    try:
        _criteria(**arguments)
    except (TypeError, ValueError) as exc:
        raise InvalidActivity(f"control {control.get('name')!r}: {exc}") from None


def _failed_probes(state: dict[str, Any] | None) -> list[str]:
    if not state:
        return []
    return [
        f"{p['activity']['name']} ("
        + (f"error: {_error(p)}" if p.get("exception") else f"got {p.get('output')!r}")
        + ")"
        for p in state.get("probes") or []
        if not p.get("tolerance_met", True)
    ]


def _error(entry: dict[str, Any]) -> str:
    """The last line of an activity's exception, without Chaos Toolkit's
    repeated ``chaoslib.exceptions.ActivityFailed:`` prefixes."""
    lines = "".join(entry.get("exception") or []).strip().splitlines()
    text = lines[-1] if lines else "no detail"
    return re.sub(r"^(?:[\w.]*ActivityFailed: )+", "", text)


def judge(journal: Journal, criteria: dict[str, float | None]) -> dict[str, Any]:
    """The verdict of a finished journal (pure: reads the journal only)."""
    reasons: list[str] = []
    status = journal.get("status")
    if status in ("interrupted", "aborted"):
        reasons.append(f"the experiment was {status}")
    steady = journal.get("steady_states") or {}
    before = steady.get("before")
    if before is not None and not before.get("steady_state_met", True):
        reasons.append(
            "steady state not met before the method: " + ", ".join(_failed_probes(before))
        )
    after = steady.get("after")
    if after is not None and not after.get("steady_state_met", True):
        reasons.append("steady state not met after the method: " + ", ".join(_failed_probes(after)))
    for entry in [*(journal.get("run") or []), *(journal.get("rollbacks") or [])]:
        if entry.get("status") == "failed":
            reasons.append(f"{entry['activity']['name']} failed: {_error(entry)}")
    for entry in journal.get("run") or []:
        provider = entry.get("activity", {}).get("provider", {})
        output = entry.get("output")
        if provider.get("func") != MONITOR_FUNC or not isinstance(output, dict):
            continue
        name = entry["activity"]["name"]
        rate = output.get("success_rate")
        floor = criteria["min_success_rate"]
        if floor is not None and rate is not None and rate < floor:
            reasons.append(f"{name}: success rate {rate:.4%} below {floor:.2%}")
        ceiling = criteria["max_downtime_s"]
        total = output.get("total_downtime_s")
        if ceiling is not None and total is not None and total > ceiling:
            reasons.append(f"{name}: total downtime {total:.2f}s above {ceiling:g}s")
        longest_max = criteria["max_longest_outage_s"]
        longest = output.get("longest_outage_s")
        if longest_max is not None and longest is not None and longest > longest_max:
            reasons.append(f"{name}: longest outage {longest:.2f}s above {longest_max:g}s")
        if output.get("still_down"):
            reasons.append(f"{name}: the service was still down when monitoring ended")
    return {"passed": not reasons, "reasons": reasons}


def after_experiment_control(
    context: Experiment,
    state: Journal,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Judge the finished experiment and record the verdict in the journal."""
    try:
        criteria = _criteria(**arguments)
    except (TypeError, ValueError) as exc:
        verdict: dict[str, Any] = {
            "passed": False,
            "reasons": [f"verdict control misconfigured: {exc}"],
        }
    else:
        verdict = judge(state, criteria)
    state.setdefault("chaosray", {})["verdict"] = verdict
    if verdict["passed"]:
        logger.info("Verdict: passed")
        return
    for reason in verdict["reasons"]:
        logger.error(f"Verdict: {reason}")
    if state.get("status") == "completed":
        state["status"] = "failed"


# The arguments this control takes, for chaosray.guard's settings check.
control_arguments = _criteria
