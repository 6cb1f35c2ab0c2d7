"""The verdict control: one pass/fail for an experiment, with the reasons.

Chaos Toolkit only fails an experiment on its steady-state hypothesis. A
scenario of ours also fails when one of its actions or measurements fails
(a replacement that never became Ready, a sequence stopped by its minimum, a
drain that timed out), when the load's thresholds failed, or when availability
was worse than the scenario allows. Declare this control **last** among the
experiment's controls, so it sees what the others recorded::

    {"name": "verdict", "provider": {"type": "python", "module": "chaosray.verdict",
     "arguments": {"min_success_rate": 0.95, "max_downtime_s": 30}}}

It writes ``journal["chaosray"]["verdict"] = {"passed": ..., "reasons": [...],
"criteria": [...]}`` (the criteria table, :func:`chaosray.judge.criteria_table`)
and, when the experiment had completed but failed a criterion, sets the
journal's status to ``failed`` (so ``chaos run`` exits 1). With
``no_evidence: inconclusive`` a run whose only shortfalls are criteria
nobody measured is recorded ``inconclusive`` rather than failed; it still
never passes (status ``failed``, exit 1; the suite exits 3).

An experiment a signal interrupted (Ctrl-C or SIGTERM, recorded by
:mod:`chaosray.interrupts`) never passes: its status becomes ``interrupted``
(whatever Chaos Toolkit made of the signal: chaoslib's own SIGTERM handling
can end ``completed``), the first reason names the signal, and ``chaos run``
exits 1.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import InvalidActivity
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosray import interrupts
from chaosray.judge import criteria, judge

__all__ = ["after_experiment_control", "validate_control"]

logger = logging.getLogger("chaostoolkit")


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: the criteria are numbers in range."""
    arguments = control.get("provider", {}).get("arguments", {})
    if "${" in str(arguments):
        return
    try:
        criteria(**arguments)
    except (TypeError, ValueError) as exc:
        raise InvalidActivity(f"control {control.get('name')!r}: {exc}") from None


def after_experiment_control(
    context: Experiment,
    state: Journal,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Judge the finished experiment (:func:`chaosray.judge.judge`) and record
    the verdict and the criteria in the journal."""
    record = state.setdefault("chaosray", {})
    signal_name = interrupts.interrupted_by()
    if signal_name and state.get("status") != "aborted":
        state["status"] = "interrupted"  # what the judge, the report and chaos read
    table: list[Any] = []
    inconclusive = False
    try:
        limits = criteria(**arguments)
    except (TypeError, ValueError) as exc:
        passed, reasons = False, [f"verdict control misconfigured: {exc}"]
    else:
        record["verdict_criteria"] = dict(limits)
        verdict = judge(state, limits)
        passed, reasons = verdict["passed"], [r["message"] for r in verdict["reasons"]]
        table = list(verdict.get("criteria") or [])
        inconclusive = bool(verdict.get("inconclusive"))
    if signal_name:
        passed = inconclusive = False
        reasons.insert(0, f"interrupted by {signal_name}: the run was cancelled, so it cannot pass")
    # The criteria table, for whoever reads the journal alone (the report
    # judges it again from the journal, with the same criteria).
    record["verdict"] = {
        "passed": passed,
        "inconclusive": inconclusive,
        "reasons": reasons,
        "criteria": table,
    }
    held = sum(row["state"] == "held" for row in table)
    if table:
        logger.info(f"Criteria: {held} of {len(table)} held")
    for row in table:
        if row["state"] != "held":
            logger.error(f"Criterion {row['id']}: {row['state']}: {row['message']}")
    if passed:
        logger.info("Verdict: passed")
        return
    if inconclusive:
        logger.error("Verdict: inconclusive (nothing broke, but not everything was measured)")
    for text in reasons:
        logger.error(f"Verdict: {text}")
    if state.get("status") == "completed":
        state["status"] = "failed"


# The arguments this control takes, for chaosray.guard's settings check.
control_arguments = criteria
