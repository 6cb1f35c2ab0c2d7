"""A suite run as one report document (``chaosray.report.suite/v1``): the
experiments' summaries, one comparison table, and the totals."""

from __future__ import annotations

import statistics
from typing import Any

from chaosray import slo
from chaosray.journal import epoch
from chaosray.report.experiment import EXPERIMENT_SCHEMA

__all__: list[str] = []  # pure logic, no activities

SUITE_SCHEMA = "chaosray.report.suite/v1"

# The comparison table's columns, in order: key, heading, unit.
COLUMNS: list[dict[str, str | None]] = [
    {"key": "experiment", "title": "Experiment", "unit": None},
    {"key": "verdict", "title": "Verdict", "unit": None},
    {"key": "success_rate", "title": "Success rate", "unit": "fraction"},
    {"key": "p50_ms", "title": "P50", "unit": "ms"},
    {"key": "p95_ms", "title": "P95", "unit": "ms"},
    {"key": "p99_ms", "title": "P99", "unit": "ms"},
    {"key": "failure_equivalent_downtime_s", "title": "Failure-equiv. downtime", "unit": "s"},
    {"key": "outage_time_s", "title": "Outage windows", "unit": "s"},
    {"key": "key_recovery_s", "title": "Key recovery", "unit": "s"},
    {"key": "budget_share", "title": "Budget burned", "unit": "fraction"},
]
# The figures of a row that repeats summarise (median and spread).
REPEATED_FIGURES = (
    "success_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "failure_equivalent_downtime_s",
    "outage_time_s",
    "key_recovery_s",
    "budget_share",
    "burn_rate",
)


def verdict_word(verdict: dict[str, Any]) -> str:
    """``passed``, ``failed``, ``inconclusive`` (nothing broke, something
    was not measured, and the criteria chose it) or ``skipped`` (not run by
    the suite)."""
    if verdict.get("skipped"):
        return "skipped"
    if verdict["passed"]:
        return "passed"
    return "inconclusive" if verdict.get("inconclusive") else "failed"


def comparison_row(experiment: dict[str, Any]) -> dict[str, Any]:
    """One row of the comparison table from an experiment summary."""
    availability = experiment["availability"]
    latency = availability.get("latency_ms") or {}
    key = experiment.get("key_recovery") or {}
    budget = experiment.get("budget") or {}
    return {
        "experiment": experiment["name"],
        "title": experiment["title"],
        "verdict": verdict_word(experiment["verdict"]),
        "passed": experiment["verdict"]["passed"],
        "success_rate": availability.get("success_rate"),
        "p50_ms": latency.get("p50"),
        "p95_ms": latency.get("p95"),
        "p99_ms": latency.get("p99"),
        "total_downtime_s": availability.get("total_downtime_s"),
        "longest_outage_s": availability.get("longest_outage_s"),
        "failure_equivalent_downtime_s": availability.get("failure_equivalent_downtime_s"),
        "outage_time_s": availability.get("outage_time_s"),
        "outage_windows": len(availability.get("outage_windows") or []),
        "availability_source": availability.get("source"),
        "key_recovery_s": key.get("seconds"),
        "key_recovery": f"{key['activity']}: {key['metric']}" if key else None,
        "key_recovery_status": key.get("status") if key else None,
        "budget_share": budget.get("share"),
        "budget_consumed_s": budget.get("consumed_s"),
        "burn_rate": budget.get("burn_rate"),
        "outage_causes": [
            w["nearest_event"] for w in (experiment.get("outage_causes") or {}).get("windows") or []
        ],
        "repeat": experiment.get("repeat"),
    }


def repeats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each experiment run more than once: every figure's values in run
    order, their median and their spread (min, max)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault(row["experiment"], []).append(row)
    out: dict[str, Any] = {}
    for name, runs in by_name.items():
        if len(runs) < 2:
            continue
        figures: dict[str, Any] = {}
        for key in REPEATED_FIGURES:
            values = [r.get(key) for r in runs]
            known = [float(v) for v in values if isinstance(v, int | float)]
            figures[key] = {
                "values": values,
                "median": statistics.median(known) if known else None,
                "min": min(known) if known else None,
                "max": max(known) if known else None,
            }
        out[name] = {
            "runs": len(runs),
            "passed": sum(1 for r in runs if r["passed"]),
            "figures": figures,
        }
    return out


def summarize_suite(
    experiments: list[dict[str, Any]],
    started: str,
    ended: str,
    *,
    title: str = "chaosray suite",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Put experiment summaries (from :func:`summarize_experiment`, in run
    order) into one ``chaosray.report.suite/v1`` document: the list, a
    comparison table (one row per experiment: verdict, success rate,
    P50/P95/P99, failure-equivalent downtime, time in outage windows, key
    recovery time) and totals.
    ``started`` / ``ended``: the suite's start and end (RFC 3339).
    ``metadata``: anything the caller wants kept with the run (context,
    results folder); it must be JSON-serialisable. The suite passes only when
    it ran at least one experiment and every one passed."""
    for index, experiment in enumerate(experiments):
        if not isinstance(experiment, dict) or experiment.get("schema") != EXPERIMENT_SCHEMA:
            raise ValueError(
                f"experiments[{index}] is not a {EXPERIMENT_SCHEMA} summary "
                "(build it with summarize_experiment)"
            )
    start, end = epoch(started), epoch(ended)
    rows = [comparison_row(e) for e in experiments]
    passed = sum(1 for e in experiments if e["verdict"]["passed"])
    skipped = sum(1 for e in experiments if e["verdict"].get("skipped"))
    inconclusive = sum(1 for e in experiments if verdict_word(e["verdict"]) == "inconclusive")
    return {
        "schema": SUITE_SCHEMA,
        "title": title,
        "started": started,
        "ended": ended,
        "duration_s": end - start if start is not None and end is not None else None,
        "totals": {
            "experiments": len(experiments),
            "passed": passed,
            "failed": len(experiments) - passed - skipped - inconclusive,
            "inconclusive": inconclusive,
            "skipped": skipped,
            "overall_passed": bool(experiments) and passed == len(experiments),
        },
        "comparison": {
            "columns": [dict(c) for c in COLUMNS],
            "rows": rows,
        },
        "repeats": repeats(rows),
        "budget": slo.total([e["budget"] for e in experiments if e.get("budget")]),
        "experiments": list(experiments),
        "metadata": dict(metadata or {}),
    }
