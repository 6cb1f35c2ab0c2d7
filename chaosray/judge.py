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

from typing import Any, Literal

from chaosray import slo
from chaosray.contract import (
    Availability,
    Blocks,
    Criteria,
    Criterion,
    Reason,
    Verdict,
    blocks_of,
)
from chaosray.journal import (
    activity_name,
    bounded_value,
    epoch,
    is_interrupted,
    iso,
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
    "no_evidence": None,
}
# What a run with no evidence and nothing broken may be called instead of failed.
NO_EVIDENCE_VERDICTS = ("failed", "inconclusive")
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
    no_evidence: Literal["failed", "inconclusive"] | None = None,
) -> Criteria:
    """Checked criteria (``ValueError`` naming the bad one). ``slo_*``: the
    service level objective the error budget is measured against
    (:mod:`chaosray.slo`; None or "" take its defaults); ``max_budget_share``:
    the most of the period's error budget the scenario may consume (0.05 =
    5 %), None for no limit; ``max_downtime_s`` / ``max_longest_outage_s``:
    the most total downtime / the longest outage window allowed (None or ""
    for no limit); ``disruptive``: the scenario must really disrupt something
    and measure availability around it (a dry run never passes);
    ``no_evidence``: what a run is whose only shortfalls are "not measured"
    (``failed``, the default, or ``inconclusive``; never passed)."""
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
    chosen = no_evidence.strip().lower() or None if isinstance(no_evidence, str) else no_evidence
    if chosen is not None and chosen not in NO_EVIDENCE_VERDICTS:
        raise ValueError(f"no_evidence must be failed or inconclusive, got {no_evidence!r}")
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
        "no_evidence": chosen,
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
        # The verdict control names the signal (chaosray.interrupts saw it).
        chaosray = journal.get("chaosray")
        given = chaosray.get("verdict") if isinstance(chaosray, dict) else None
        recorded = given.get("reasons") if isinstance(given, dict) else None
        by_signal = [
            str(r) for r in recorded or [] if isinstance(r, str) and r.startswith("interrupted by ")
        ]
        found.append(
            reason(str(status), by_signal[0] if by_signal else f"the experiment was {status}")
        )
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
    table = criteria_table(journal, limits, method_availability(journal))
    # The table decides: every row not held is a reason, said once; the
    # journal's evidence already says why an activity or the load failed.
    said = {r["activity"] for r in found if r["activity"]}
    shortfalls: list[Reason] = []
    for item in table:
        if item["state"] == "held" or (item["activity"] in said and item["kind"] != "recovery"):
            continue
        if all(r["message"] != item["message"] for r in shortfalls):
            kind = NO_EVIDENCE if item["state"] == "no evidence" else item["kind"]
            shortfalls.append(reason(kind, item["message"], item["activity"], item["measured"]))
    # "the journal's status is failed" says nothing when a shortfall says why.
    reasons = [r for r in found if not (shortfalls and r["kind"] == "status")] + shortfalls
    passed = not reasons and status == "completed"
    if not passed and not reasons:
        reasons.append(reason("status", f"the journal's status is {status!r}"))
    # Inconclusive only where the user chose it, and only when nothing broke:
    # every reason is a criterion nobody measured.
    inconclusive = (
        not passed
        and limits.get("no_evidence") == "inconclusive"
        and all(r["kind"] == NO_EVIDENCE for r in reasons)
    )
    return {
        "passed": passed,
        "skipped": False,
        "source": source,
        "reasons": [] if passed else reasons,
        "evidence": found,
        "criteria": table,
        "inconclusive": inconclusive,
    }


def row(
    criterion_id: str,
    state: Any,
    message: str,
    *,
    kind: str = "criterion",
    measured: Any = None,
    bound: Any = None,
    since: str | None = None,
    since_source: str | None = None,
    activity: str | None = None,
) -> Criterion:
    """One row of the criteria table; ``message`` says what was seen (the
    reason the verdict gives when it did not hold)."""
    return {
        "id": criterion_id,
        "state": state,
        "kind": kind,
        "measured": bounded_value(measured),
        "bound": bound,
        "since": since,
        "since_source": since_source,
        "activity": activity,
        "message": message,
    }


def _state(ok: bool | None) -> Any:
    return "no evidence" if ok is None else ("held" if ok else "broken")


def _not_measured(name: str, what: str) -> str:
    return f"not measured: {name}: {what}"


PHASE_PREFIX = {
    "steady_state_before": "before:",
    "steady_state_after": "after:",
    "steady_state_during": "during:",
    "rollback": "rollback:",
}


def _activity_rows(journal: dict[str, Any]) -> list[Criterion]:
    """A row per steady-state probe, method activity and rollback: held when
    it succeeded (and met its tolerance), broken when it failed or a signal
    cut it off; and a row per recovery figure, timed from its event."""
    rows: list[Criterion] = []
    for phase, entry in iter_entries(journal):
        if phase == "control":
            continue
        name = activity_name(entry)
        prefix = PHASE_PREFIX.get(phase, "")
        cut = is_interrupted(entry)
        failed = cut or entry.get("status") == "failed" or entry.get("tolerance_met") is False
        error = last_error_line(entry)
        seen = (
            "cut off by a signal"
            if cut
            else f"failed: {error}"
            if failed and error
            else f"not met: got {short_value(entry.get('output'))}"
            if failed
            else "held"
        )
        blocks = blocks_of(entry.get("output"))
        if phase == "method" and blocks["availability"] is not None:
            continue  # an availability measurement: its figures are rows of their own
        rows.append(
            row(
                f"{prefix}{name}",
                _state(not failed),
                f"{prefix}{name}: {seen}",
                kind="activity",
                activity=name,
            )
        )
        if phase != "method" or failed:
            continue
        for figure in blocks["recoveries"]:
            rows.append(_recovery_row(name, figure))
    return rows


def _recovery_row(name: str, figure: Any) -> Criterion:
    seconds, bound = figure.get("seconds"), figure.get("bound_s")
    metric = str(figure.get("metric"))
    since = figure.get("since_source") or "its event"
    ok = None if seconds is None else (not isinstance(bound, int | float) or seconds <= bound)
    if seconds is None:
        text = _not_measured(name, f"{metric}: no recovery after the {since} was seen")
    else:
        limit = f"at most {bound:g}s" if isinstance(bound, int | float) else "no bound"
        text = f"{name}: {metric} {seconds:.1f}s after the {since} ({limit})"
    return row(
        f"{name}.{metric}",
        _state(ok if figure.get("primary") or seconds is not None else True),
        text,
        kind="recovery",
        measured=seconds,
        bound=bound,
        since=figure.get("since"),
        since_source=figure.get("since_source"),
        activity=name,
    )


def _availability_rows(name: str, block: Availability, limits: Criteria) -> list[Criterion]:
    """A row per availability criterion the limits set, and "up at the end"
    always; with no request measured every one is "no evidence"."""
    rate = block.get("success_rate")
    measured = bool(block.get("requests")) and rate is not None
    since = epoch(block.get("started_at"))
    origin = "the start of the measurement" if since is not None else None
    rows: list[Criterion] = []
    nothing = _not_measured(name, "no request was measured")

    def add(
        cid: str, ok: bool | None, text: str, value: Any, bound: Any, kind: str = "availability"
    ) -> None:
        """A row; with nothing measured, or no figure (``ok`` None), no evidence."""
        if not measured:
            ok, message = None, nothing
        else:
            message = _not_measured(name, text) if ok is None else f"{name}: {text}"
        rows.append(
            row(
                cid,
                _state(ok),
                message,
                kind=kind,
                measured=value,
                bound=bound,
                since=iso(since),
                since_source=origin,
                activity=name,
            )
        )

    floor = limits.get("min_success_rate")
    if floor is not None:
        ok = rate is not None and rate >= floor
        text = f"success rate {rate or 0:.4%} " + (
            f"(at least {floor:.2%})" if ok else f"below {floor:.2%}"
        )
        add("success-rate", ok, text, rate, floor)
    for key, cid, label, figure_key in (
        ("max_downtime_s", "outage-s", "total downtime", "total_downtime_s"),
        ("max_longest_outage_s", "longest-outage-s", "longest outage", "longest_outage_s"),
    ):
        ceiling = limits.get(key)
        figure = block.get(figure_key)
        if not isinstance(ceiling, int | float):
            continue
        if not isinstance(figure, int | float):
            add(cid, None, f"{label} ({figure_key}) is missing", figure, ceiling)
            continue
        ok = figure <= ceiling
        text = f"{label} {figure:.2f}s " + (
            f"(at most {ceiling:g}s)" if ok else f"above {ceiling:g}s"
        )
        add(cid, ok, text, figure, ceiling)
    share_max = limits.get("max_budget_share")
    if share_max is not None:
        share = block_budget(block, limits)["share"] if measured else None
        if share is None:
            add("budget-share", None, "the error budget consumed could not be computed",
                None, share_max, "budget")  # fmt: skip
        else:
            ok = share <= share_max
            text = f"consumed {share:.2%} of the error budget, " + (
                f"at most {share_max:.2%}" if ok else f"above {share_max:.2%}"
            )
            add("budget-share", ok, text, share, share_max, "budget")
    still_down = bool(block.get("still_down"))
    add(
        "up-at-end",
        not still_down,
        "the service was still down when monitoring ended"
        if still_down
        else "the service answered when monitoring ended",
        not still_down,
        True,
    )
    if block.get("ended_by") == "duration":
        rows.append(
            row(
                "measured-to-the-end",
                _state(None),
                _not_measured(
                    name,
                    "the measurement stopped at its own duration cap before the method "
                    "ended (raise its duration)",
                ),
                kind="availability",
                activity=name,
            )
        )
    return rows


def _disruption_rows(
    journal: dict[str, Any], limits: Criteria, measured: list[tuple[str, Availability]]
) -> list[Criterion]:
    """``disrupted`` (the scenario really broke something: a dry run, a
    skipped step or nothing at all proves nothing), ``availability`` (some
    measurement exists where the criteria ask for one) and
    ``measurement-covers-disruption`` (each measurement spans each disruption)."""
    rows: list[Criterion] = []
    wants_availability = limits.get("disruptive") or any(
        limits.get(key) is not None
        for key in ("min_success_rate", "max_downtime_s", "max_longest_outage_s")
    )
    if wants_availability and not measured:
        rows.append(
            row(
                "availability",
                _state(None),
                "not measured: availability: the method has no "
                "availability measurement (add the availability monitor)",
            )
        )
    attempted = [d for _, _, blocks in method_blocks(journal) for d in blocks["disruptions"]]
    done = [d for d in attempted if d.get("status") == "done" and d.get("kind") != "cordon"]
    what = [f"{d['kind']} of {d.get('pod') or d.get('node')}" for d in done]
    if limits.get("disruptive"):
        first = min((at for d in done if (at := epoch(d.get("at"))) is not None), default=None)
        states = sorted({str(d.get("status")) for d in attempted}) or ["no disruption"]
        rows.append(
            row(
                "disrupted",
                _state(True if done else None),
                f"disrupted: {', '.join(what)}"
                if done
                else "not measured: disrupted: nothing was really disrupted "
                f"({', '.join(states)}), so the scenario proves nothing",
                measured=what or states,
                since=iso(first),
                since_source="the first disruption" if first is not None else None,
            )
        )
    for name, block in measured:
        start, end = epoch(block.get("started_at")), epoch(block.get("ended_at"))
        if start is None or end is None or not done:
            continue
        outside = [
            w
            for d, w in zip(done, what, strict=True)
            if (at := epoch(d.get("at"))) is not None and not start <= at <= end
        ]
        rows.append(
            row(
                "measurement-covers-disruption",
                _state(None if outside else True),
                _not_measured(
                    name, f"the measurement does not cover the disruption ({', '.join(outside)})"
                )
                if outside
                else f"{name}: measured from {iso(start)} to {iso(end)}, across every disruption",
                kind="availability",
                activity=name,
            )
        )
    return rows


def criteria_table(
    journal: dict[str, Any], limits: Criteria, measured: list[tuple[str, Availability]]
) -> list[Criterion]:
    """The scenario's criteria table: every claim the verdict makes, each
    held, broken or without evidence, with its figure, bound and origin."""
    rows = _activity_rows(journal)
    for name, block in measured:
        rows.extend(_availability_rows(name, block, limits))
    rows.extend(_disruption_rows(journal, limits, measured))
    k6 = _k6_result(journal)
    if k6 is not None:
        problems = _k6_reasons(k6)
        ok = None if any(r["kind"] == NO_EVIDENCE for r in problems) else not problems
        timeout = k6.get("timeout_s")
        rows.append(
            row(
                "k6-load",
                _state(ok),
                "; ".join(r["message"] for r in problems)
                or f"k6 load: {k6.get('requests')} requests, thresholds held"
                + (f" (request timeout {timeout:g}s)" if isinstance(timeout, int | float) else ""),
                kind="load",
                measured=k6.get("success_rate"),
                bound=k6.get("thresholds"),
                activity=K6_RUN_NAME,
            )
        )
    return rows


def failed_criteria(verdict: Verdict) -> list[Criterion]:
    """The rows of a verdict's table that did not hold, broken first."""
    rows = [r for r in verdict.get("criteria") or [] if r["state"] != "held"]
    return sorted(rows, key=lambda r: r["state"] != "broken")


def method_blocks(journal: dict[str, Any]) -> list[tuple[str, dict[str, Any], Blocks]]:
    """Each method activity's name, journal entry and contract blocks."""
    return [
        (activity_name(entry), entry, blocks_of(entry.get("output")))
        for phase, entry in iter_entries(journal)
        if phase == "method"
    ]


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
