"""The one judge: a journal and a scenario's criteria in, a :class:`Verdict` out.

The verdict control (:mod:`chaosray.verdict`) calls it when the experiment
ends, the report (:mod:`chaosray.report.experiment`) calls it on the journal
it summarises, and the suite calls it for a run the control did not judge.
They agree because there is only this one.

An experiment fails when any of these hold:

- it was interrupted or aborted;
- a steady-state probe failed, before, during or after the method;
- an activity or a rollback failed, or was cut off by a signal;
- the load (k6) failed its thresholds or did not run;
- an ``availability`` block (:mod:`chaosray.contract`) of the method is worse
  than the criteria allow, or the service was still down when it ended;
- a criterion has no evidence (``no_evidence``, "not measured: ..."): a
  measurement of 0 requests, no availability measurement where the criteria
  ask for one, a measurement that stopped before the method ended or does not
  cover the disruption, a recovery figure that was never measured, a k6 run
  that sent nothing or reported a problem, or (``disruptive`` criteria) a
  scenario in which nothing was really disrupted (a dry run, every step
  skipped). No evidence is never a pass;
- the journal says failed or deviated for a reason none of the above gives.

Pure: reads the journal only.
"""

from __future__ import annotations

from typing import Any

from chaosray import slo
from chaosray.contract import Availability, Blocks, Criteria, Reason, Verdict, blocks_of
from chaosray.journal import (
    activity_name,
    bounded_value,
    epoch,
    is_interrupted,
    iter_entries,
    last_error_line,
    short_value,
)

__all__: list[str] = []  # pure logic, no activities

# The journal status the suite gives an experiment it did not run.
SKIPPED = "skipped"
K6_RUN_NAME = "k6-load"
NO_CRITERIA: Criteria = {
    "min_success_rate": None,
    "max_downtime_s": None,
    "max_longest_outage_s": None,
    "max_budget_share": None,
    "slo_target": None,
    "slo_period_days": None,
    "slo_latency_p99_ms": None,
    "disruptive": None,
}
# The reason kind of a criterion nobody measured.
NO_EVIDENCE = "no_evidence"


def criteria(
    min_success_rate: float | str | None = None,
    max_downtime_s: float | str | None = None,
    max_longest_outage_s: float | str | None = None,
    max_budget_share: float | str | None = None,
    slo_target: float | str | None = None,
    slo_period_days: float | str | None = None,
    slo_latency_p99_ms: float | str | None = None,
    disruptive: bool | str | None = None,
) -> Criteria:
    """Checked criteria (``ValueError`` naming the bad one). ``slo_*``: the
    service level objective the error budget is measured against
    (:mod:`chaosray.slo`; None or "" take its defaults); ``max_budget_share``:
    the most of the period's error budget the scenario may consume (0.05 =
    5 %), None for no limit; ``max_downtime_s`` / ``max_longest_outage_s``:
    the most total downtime / the longest outage window allowed (None or ""
    for no limit); ``disruptive``: the scenario must really disrupt something
    and measure availability around it (a dry run never passes)."""
    objective = slo.slo(slo_target, slo_period_days, slo_latency_p99_ms)
    budget_share = slo.number_setting("max_budget_share", max_budget_share)
    max_downtime_s = slo.number_setting("max_downtime_s", max_downtime_s)
    max_longest_outage_s = slo.number_setting("max_longest_outage_s", max_longest_outage_s)
    min_success_rate = slo.number_setting("min_success_rate", min_success_rate)
    if isinstance(disruptive, str) and disruptive.strip().lower() in ("", "true", "false"):
        disruptive = {"": None, "true": True, "false": False}[disruptive.strip().lower()]
    if disruptive is not None and not isinstance(disruptive, bool):
        raise ValueError(f"disruptive must be true or false, got {disruptive!r}")
    for name, value in (
        ("min_success_rate", min_success_rate),
        ("max_downtime_s", max_downtime_s),
        ("max_longest_outage_s", max_longest_outage_s),
        ("max_budget_share", budget_share),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if min_success_rate is not None and min_success_rate > 1:
        raise ValueError(f"min_success_rate is a fraction (0..1), got {min_success_rate!r}")
    return {
        "min_success_rate": min_success_rate,
        "max_downtime_s": max_downtime_s,
        "max_longest_outage_s": max_longest_outage_s,
        "max_budget_share": budget_share,
        "slo_target": objective["target"],
        "slo_period_days": objective["period_days"],
        "slo_latency_p99_ms": objective["latency_p99_ms"],
        "disruptive": disruptive,
    }


def objective_of(limits: Criteria | None) -> slo.Slo:
    """The SLO of some criteria (the defaults when they give none)."""
    limits = limits or NO_CRITERIA
    return slo.slo(
        limits.get("slo_target"), limits.get("slo_period_days"), limits.get("slo_latency_p99_ms")
    )


def block_budget(block: Availability, limits: Criteria | None) -> slo.Budget:
    """The error budget an availability block consumed (whole measurement)."""
    latency = block.get("latency_s") or {}
    p99 = latency.get("p99")
    return slo.budget(
        objective_of(limits),
        requests=block.get("requests"),
        failed=block.get("failed"),
        failure_equivalent_downtime_s=block.get("failure_equivalent_downtime_s"),
        p99_ms=p99 * 1000.0 if isinstance(p99, int | float) else None,
    )


def reason(kind: str, message: str, activity: str | None = None, value: Any = None) -> Reason:
    return {"kind": kind, "message": message, "activity": activity, "value": value}


def _steady_state_reasons(journal: dict[str, Any]) -> list[Reason]:
    reasons = []
    steady = journal.get("steady_states")
    steady = steady if isinstance(steady, dict) else {}
    labels = {
        "before": ("steady_state_before", "before the method"),
        "after": ("steady_state_after", "after the method"),
    }
    for key, (kind, when) in labels.items():
        state = steady.get(key)
        if not isinstance(state, dict):
            continue
        probes = [p for p in state.get("probes") or [] if isinstance(p, dict)]
        failed = [
            p
            for p in probes
            if p.get("tolerance_met") is False or p.get("status") == "failed" or is_interrupted(p)
        ]
        for probe in failed:
            name = activity_name(probe)
            error = last_error_line(probe)
            got = f"error: {error}" if error else f"got {short_value(probe.get('output'))}"
            reasons.append(
                reason(
                    kind,
                    f"steady state not met {when}: {name} ({got})",
                    name,
                    bounded_value(probe.get("output")),
                )
            )
        if state.get("steady_state_met") is False and not failed:
            reasons.append(reason(kind, f"steady state not met {when}"))
    for state in steady.get("during") or []:
        if isinstance(state, dict) and state.get("steady_state_met") is False:
            names = [
                activity_name(p)
                for p in state.get("probes") or []
                if isinstance(p, dict) and p.get("tolerance_met") is False
            ]
            reasons.append(
                reason(
                    "steady_state_during",
                    "steady state not met during the method"
                    + (f": {', '.join(names)}" if names else ""),
                )
            )
    return reasons


def _k6_result(journal: dict[str, Any]) -> dict[str, Any] | None:
    chaosray = journal.get("chaosray")
    result = chaosray.get("k6") if isinstance(chaosray, dict) else None
    return result if isinstance(result, dict) else None


def _k6_reasons(k6: dict[str, Any]) -> list[Reason]:
    if k6.get("status") == "thresholds_failed":
        failed = sorted(k for k, ok in (k6.get("thresholds") or {}).items() if not ok)
        detail = ", ".join(failed) or f"exit code {k6.get('exit_code')}"
        return [reason("k6_thresholds", f"k6 thresholds failed: {detail}", K6_RUN_NAME, failed)]
    if k6.get("status") == "error":
        error = k6.get("error") or k6.get("exit_reason") or "unknown error"
        return [reason("k6_error", f"k6 load error: {error}", K6_RUN_NAME, error)]
    found = []
    if k6.get("error"):  # a problem the run noted while its own status stayed "passed"
        found.append(reason("k6_error", f"k6 load error: {k6['error']}", K6_RUN_NAME, k6["error"]))
    if not k6.get("requests"):
        found.append(
            reason(
                NO_EVIDENCE,
                "not measured: the k6 load sent no request, so its thresholds prove nothing",
                K6_RUN_NAME,
                k6.get("requests"),
            )
        )
    return found


def evidence(journal: dict[str, Any]) -> list[Reason]:
    """Every failure the journal itself shows, with names and values."""
    found: list[Reason] = []
    status = journal.get("status")
    if status in ("interrupted", "aborted"):
        found.append(reason(str(status), f"the experiment was {status}"))
    found.extend(_steady_state_reasons(journal))
    k6 = _k6_result(journal)
    for phase, entry in iter_entries(journal):
        if phase.startswith("steady_state"):
            continue
        name = activity_name(entry)
        if k6 is not None and name == K6_RUN_NAME and phase == "control":
            continue  # said from journal["chaosray"]["k6"] below, with the thresholds
        where = "rollback" if phase == "rollback" else "activity"
        label = f"rollback {name}" if phase == "rollback" else name
        if is_interrupted(entry):
            found.append(
                reason(
                    f"{where}_interrupted",
                    f"{where} {name!r} was cut off by a signal before it ended",
                    name,
                )
            )
        elif entry.get("status") == "failed":
            error = last_error_line(entry) or "no error message"
            found.append(reason(where, f"{label} failed: {error}", name, error))
    if k6 is not None:
        found.extend(_k6_reasons(k6))
    if status == "failed" and not found:
        found.append(reason("status", "the journal's status is failed"))
    if journal.get("deviated") and not any(r["kind"].startswith("steady_state") for r in found):
        found.append(reason("deviated", "the system deviated from its steady state"))
    return found


def _not_measured(name: str, what: str, value: Any = None) -> Reason:
    return reason(NO_EVIDENCE, f"not measured: {name}: {what}", name, value)


def availability_reasons(name: str, block: Availability, limits: Criteria) -> list[Reason]:
    """How one availability block falls short of the criteria. A figure a
    criterion needs that the block does not have is "not measured", never a pass."""
    found = []
    requests = block.get("requests")
    rate, floor = block.get("success_rate"), limits["min_success_rate"]
    if not requests or rate is None:
        if any(
            limits.get(key) is not None
            for key in ("min_success_rate", "max_downtime_s", "max_longest_outage_s", "disruptive")
        ):
            found.append(_not_measured(name, "no request was measured", requests))
        return found
    if floor is not None and rate < floor:
        found.append(
            reason("availability", f"{name}: success rate {rate:.4%} below {floor:.2%}", name, rate)
        )
    for key, label, figure_key in (
        ("max_downtime_s", "total downtime", "total_downtime_s"),
        ("max_longest_outage_s", "longest outage", "longest_outage_s"),
    ):
        ceiling = limits.get(key)
        figure = block.get(figure_key)
        if not isinstance(ceiling, int | float):
            continue
        if not isinstance(figure, int | float):
            found.append(_not_measured(name, f"{label} ({figure_key}) is missing", figure))
        elif figure > ceiling:
            found.append(
                reason(
                    "availability",
                    f"{name}: {label} {figure:.2f}s above {ceiling:g}s",
                    name,
                    figure,
                )
            )
    share_max = limits.get("max_budget_share")
    if share_max is not None:
        share = block_budget(block, limits)["share"]
        if share is None:
            found.append(_not_measured(name, "the error budget consumed could not be computed"))
        elif share > share_max:
            found.append(
                reason(
                    "budget",
                    f"{name}: consumed {share:.2%} of the error budget, above {share_max:.2%}",
                    name,
                    share,
                )
            )
    if block.get("ended_by") == "duration":
        found.append(
            _not_measured(
                name,
                "the measurement stopped at its own duration cap before the method ended "
                "(raise its duration)",
            )
        )
    if block.get("still_down"):
        found.append(
            reason(
                "availability", f"{name}: the service was still down when monitoring ended", name
            )
        )
    return found


def method_availability(journal: dict[str, Any]) -> list[tuple[str, Availability]]:
    """The availability blocks of the method, with their activities' names."""
    return [
        (activity_name(entry), block)
        for phase, entry in iter_entries(journal)
        if phase == "method" and (block := blocks_of(entry.get("output"))["availability"])
    ]


def recorded_criteria(journal: dict[str, Any]) -> Criteria | None:
    """The criteria the verdict control recorded in the journal, if it ran."""
    chaosray = journal.get("chaosray")
    given = chaosray.get("verdict_criteria") if isinstance(chaosray, dict) else None
    if not isinstance(given, dict):
        return None
    try:
        return criteria(**{k: given.get(k) for k in NO_CRITERIA if k in given})
    except ValueError:
        return None


def judge(journal: dict[str, Any], limits: Criteria | None = None) -> Verdict:
    """The verdict of a finished journal. ``limits``: the scenario's criteria;
    None: those the journal's verdict control recorded, else none."""
    status = journal.get("status")
    chaosray = journal.get("chaosray")
    given = chaosray.get("verdict") if isinstance(chaosray, dict) else None
    given = given if isinstance(given, dict) else None
    if status == SKIPPED:  # the suite did not run it: neither passed nor failed
        texts = (given or {}).get("reasons") or ["not run"]
        return {
            "passed": False,
            "skipped": True,
            "source": "suite",
            "reasons": [reason("skipped", _text(t)) for t in texts],
            "evidence": [],
        }
    found = evidence(journal)
    if limits is None:
        limits = recorded_criteria(journal)
        if limits is None and given is not None and isinstance(given.get("passed"), bool):
            return _as_recorded(journal, given, found)
    source = "journal" if limits is None else "judge"
    limits = limits or NO_CRITERIA
    measured = method_availability(journal)
    shortfalls = [r for name, block in measured for r in availability_reasons(name, block, limits)]
    shortfalls += _evidence_gaps(journal, measured, limits)
    # "the journal's status is failed" says nothing when a shortfall says why.
    reasons = [r for r in found if not (shortfalls and r["kind"] == "status")] + shortfalls
    passed = not reasons and status == "completed"
    if not passed and not reasons:
        reasons.append(reason("status", f"the journal's status is {status!r}"))
    return {
        "passed": passed,
        "skipped": False,
        "source": source,
        "reasons": [] if passed else reasons,
        "evidence": found,
    }


def method_blocks(journal: dict[str, Any]) -> list[tuple[str, dict[str, Any], Blocks]]:
    """Each method activity's name, journal entry and contract blocks."""
    return [
        (activity_name(entry), entry, blocks_of(entry.get("output")))
        for phase, entry in iter_entries(journal)
        if phase == "method"
    ]


def _evidence_gaps(
    journal: dict[str, Any], measured: list[tuple[str, Availability]], limits: Criteria
) -> list[Reason]:
    """The criteria nobody measured: no availability measurement where the
    criteria ask for one, a measurement that does not cover the disruption, a
    recovery never measured, a disruptive scenario that disrupted nothing."""
    if journal.get("status") in ("interrupted", "aborted"):
        return []  # said already: an interrupted run proves nothing either way
    gaps: list[Reason] = []
    wants_availability = limits.get("disruptive") or any(
        limits.get(key) is not None
        for key in ("min_success_rate", "max_downtime_s", "max_longest_outage_s")
    )
    if wants_availability and not measured:
        gaps.append(
            reason(
                NO_EVIDENCE,
                "not measured: availability: the method has no availability measurement "
                "(add the availability monitor)",
            )
        )
    entries = method_blocks(journal)
    done = [
        d
        for _, _, blocks in entries
        for d in blocks["disruptions"]
        if d.get("status") == "done" and d.get("kind") != "cordon"
    ]
    if limits.get("disruptive"):
        attempted = [d for _, _, blocks in entries for d in blocks["disruptions"]]
        if not done:
            states = sorted({str(d.get("status")) for d in attempted}) or ["no disruption"]
            gaps.append(
                reason(
                    NO_EVIDENCE,
                    "not measured: disrupted: nothing was really disrupted "
                    f"({', '.join(states)}), so the scenario proves nothing",
                    None,
                    states,
                )
            )
    for name, block in measured:
        start, end = epoch(block.get("started_at")), epoch(block.get("ended_at"))
        if start is None or end is None:
            continue
        outside = [
            d for d in done if (at := epoch(d.get("at"))) is not None and not start <= at <= end
        ]
        if outside:
            what = ", ".join(f"{d['kind']} of {d.get('pod') or d.get('node')}" for d in outside)
            gaps.append(
                _not_measured(name, f"the measurement does not cover the disruption ({what})")
            )
    for name, entry, blocks in entries:
        if entry.get("status") == "failed" or is_interrupted(entry):
            continue  # the activity's failure says it already
        for figure in blocks["recoveries"]:
            if figure.get("primary") and figure.get("seconds") is None:
                gaps.append(
                    _not_measured(
                        name,
                        f"{figure.get('metric')}: no recovery after the disruption was seen",
                    )
                )
    return gaps


def _text(value: Any) -> str:
    return str(value.get("message")) if isinstance(value, dict) else str(value)


def _as_recorded(journal: dict[str, Any], given: dict[str, Any], found: list[Reason]) -> Verdict:
    """The one fallback, for journals from before the control recorded its
    criteria: the control's own verdict as written; an interruption still fails."""
    status = journal.get("status")
    reasons = [reason("verdict", _text(t)) for t in given.get("reasons") or [] if t]
    if status in ("interrupted", "aborted") and not any(
        str(status) in r["message"] for r in reasons
    ):
        reasons.append(reason(str(status), f"the experiment was {status}"))
    passed = bool(given["passed"]) and status not in ("interrupted", "aborted")
    if not passed and not reasons:
        reasons = list(found) or [reason("verdict", "the verdict control failed it")]
    return {
        "passed": passed,
        "skipped": False,
        "source": "recorded",
        "reasons": [] if passed else reasons,
        "evidence": found,
    }
