"""Renderers of a suite document that return strings: JSON, JUnit XML and the
console table (rich). The HTML report is in :mod:`chaosray.report.html`."""

from __future__ import annotations

import io
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chaosray.journal import epoch
from chaosray.report.suite import verdict_word

__all__: list[str] = []  # pure logic, no activities

# Characters XML 1.0 cannot carry at all (CI parsers reject the file).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def fmt_rate(value: Any) -> str:
    """A success rate as a percentage with 3 decimals; '-' when unknown."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value * 100:.3f} %"


def fmt_ms(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def fmt_s(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:.2f} s"


def fmt_share(value: Any) -> str:
    """A share of the error budget, in percent; '-' when unknown."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value * 100:.2f} %" if value >= 0.0001 else f"{value * 100:.4f} %"


def fmt_recovery(row: dict[str, Any]) -> str:
    if row.get("key_recovery_status") not in (None, "succeeded"):
        return "not recovered"
    return fmt_s(row.get("key_recovery_s"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def render_json(suite: dict[str, Any]) -> str:
    """The suite document as indented JSON (UTF-8 text; NaN and infinities
    become null so any JSON parser reads it)."""
    return json.dumps(_finite(suite), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _xml_text(value: Any) -> str:
    return _XML_INVALID.sub("\ufffd", str(value))


def _junit_timestamp(value: str | None) -> str | None:
    seconds = epoch(value)
    if seconds is None:
        return None
    # JUnit's schema: xs:dateTime without a zone; we write UTC.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def extra_evidence(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """The journal's evidence that the verdict's reasons do not already say:
    not the same message, and not about an activity a reason names."""
    reasons = [r["message"] for r in verdict["reasons"]]
    extra = []
    for item in verdict.get("evidence") or []:
        if item["message"] in reasons:
            continue
        activity = item.get("activity")
        if activity and any(activity in message for message in reasons):
            continue
        extra.append(item)
    return extra


def _failure_text(experiment: dict[str, Any]) -> str:
    verdict = experiment["verdict"]
    lines = [f"- {r['message']}" for r in verdict["reasons"]]
    extra = [f"- {r['message']}" for r in extra_evidence(verdict)]
    if extra:
        lines += ["", "Evidence from the journal:", *extra]
    return "\n".join(lines)


def _figures_text(experiment: dict[str, Any]) -> str:
    availability = experiment["availability"]
    latency = availability.get("latency_ms") or {}
    lines = [
        f"verdict: {verdict_word(experiment['verdict'])} "
        f"(from {experiment['verdict']['source']}); journal status: {experiment['journal_status']}",
        f"availability ({availability['source']}): success rate "
        f"{fmt_rate(availability.get('success_rate'))}, P50 {fmt_ms(latency.get('p50'))}, "
        f"P95 {fmt_ms(latency.get('p95'))}, P99 {fmt_ms(latency.get('p99'))}",
        f"failure-equivalent downtime {fmt_s(availability.get('failure_equivalent_downtime_s'))}; "
        f"outage windows (> 50 % failed over 1 s): "
        f"{len(availability.get('outage_windows') or [])}, total "
        f"{fmt_s(availability.get('outage_time_s'))}, longest "
        f"{fmt_s(availability.get('longest_outage_window_s'))}",
        f"runs of consecutive failures: {len(availability.get('downtime_windows') or [])}, "
        f"total {fmt_s(availability.get('total_downtime_s'))}, longest "
        f"{fmt_s(availability.get('longest_outage_s'))}",
    ]
    for figure in experiment["recovery"]:
        value = (
            fmt_s(figure["seconds"])
            if figure["seconds"] is not None
            else f"failed: {figure['error']}"
        )
        lines.append(f"recovery {figure['activity']} {figure['metric']}: {value}")
    for disruption in experiment["disruptions"]:
        target = disruption.get("pod") or disruption.get("node") or "?"
        lines.append(
            f"disruption {disruption['kind']} {target} at {disruption.get('at') or '?'} "
            f"({disruption['status']})"
        )
    return "\n".join(lines)


CRITERION_ORDER = {"broken": 0, "no evidence": 1, "held": 2}


def ordered_criteria(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    """An experiment's criteria table, broken rows first, then those with
    no evidence, then those that held (each group in the judge's order)."""
    rows = list((experiment.get("verdict") or {}).get("criteria") or [])
    return sorted(rows, key=lambda r: CRITERION_ORDER.get(str(r.get("state")), 3))


def criterion_figures(criterion: dict[str, Any]) -> str:
    """What a criterion measured, its bound and its origin, in one line."""
    parts = [f"measured: {criterion.get('measured')!r}", f"bound: {criterion.get('bound')!r}"]
    if criterion.get("since"):
        parts.append(f"from {criterion.get('since_source') or 'its event'} at {criterion['since']}")
    return "; ".join(parts)


def _criteria_suite(root: ET.Element, suite: dict[str, Any]) -> dict[str, int]:
    """A second ``<testsuite>``: a ``<testcase>`` per criterion of every
    experiment (classname ``chaosray.<experiment>``, name the criterion's
    id), a ``<failure>`` of type ``broken`` or ``no evidence`` for a row
    that did not hold, so CI systems show which criterion broke."""
    title = f"{suite.get('title') or 'chaosray'}: criteria"
    testsuite = ET.SubElement(root, "testsuite", name=_xml_text(title))
    counts = {"tests": 0, "failures": 0}
    for experiment in suite["experiments"]:
        classname = "chaosray." + re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment["name"])
        for criterion in ordered_criteria(experiment):
            counts["tests"] += 1
            case = ET.SubElement(
                testsuite, "testcase", name=_xml_text(criterion["id"]), classname=classname
            )
            if criterion["state"] != "held":
                counts["failures"] += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=_xml_text(criterion["message"]),
                    type=_xml_text(criterion["state"]),
                )
                failure.text = _xml_text(criterion_figures(criterion))
            out = ET.SubElement(case, "system-out")
            out.text = _xml_text(f"{criterion['message']}\n{criterion_figures(criterion)}")
    for key, value in {**counts, "errors": 0, "skipped": 0}.items():
        testsuite.set(key, str(value))
    return counts


def render_junit(suite: dict[str, Any]) -> str:
    """JUnit XML: ``<testsuites>`` with one ``<testsuite>`` and a
    ``<testcase>`` per experiment. A failed verdict is a ``<failure>`` (its
    ``message`` the first reason, its text every reason); an interrupted or
    aborted experiment is an ``<error>``. Each test case's ``<system-out>``
    holds the key figures. Times are seconds. A second ``<testsuite>``
    holds a ``<testcase>`` per criterion of each experiment's criteria
    table (:func:`_criteria_suite`)."""
    experiments = suite["experiments"]
    failures = errors = skipped = 0
    total_time = suite.get("duration_s")
    root = ET.Element("testsuites", name=_xml_text(suite.get("title") or "chaosray"))
    testsuite = ET.SubElement(root, "testsuite", name=_xml_text(suite.get("title") or "chaosray"))
    properties = ET.SubElement(testsuite, "properties")
    ET.SubElement(properties, "property", name="schema", value=_xml_text(suite["schema"]))
    ET.SubElement(
        properties,
        "property",
        name="overall_passed",
        value=str(suite["totals"]["overall_passed"]).lower(),
    )
    for experiment in experiments:
        verdict = experiment["verdict"]
        case = ET.SubElement(
            testsuite,
            "testcase",
            name=_xml_text(experiment["name"]),
            classname="chaosray." + re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment["name"]),
            time=f"{experiment.get('duration_s') or 0.0:.3f}",
        )
        if verdict.get("skipped"):
            skipped += 1
            reasons = verdict["reasons"]
            ET.SubElement(
                case, "skipped", message=_xml_text(reasons[0]["message"] if reasons else "not run")
            )
        elif not verdict["passed"]:
            reasons = verdict["reasons"]
            first = reasons[0]["message"] if reasons else "failed"
            interrupted = experiment.get("journal_status") in ("interrupted", "aborted")
            tag = "error" if interrupted else "failure"
            if interrupted:
                errors += 1
            else:
                failures += 1
            element = ET.SubElement(
                case,
                tag,
                message=_xml_text(first),
                # Inconclusive is still a failure to CI: it never passes.
                type=_xml_text(
                    experiment.get("journal_status")
                    if interrupted
                    else "inconclusive"
                    if verdict.get("inconclusive")
                    else "verdict"
                ),
            )
            element.text = _xml_text(_failure_text(experiment))
        out = ET.SubElement(case, "system-out")
        out.text = _xml_text(_figures_text(experiment))
    counts = {
        "tests": str(len(experiments)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": f"{total_time or sum(e.get('duration_s') or 0.0 for e in experiments):.3f}",
    }
    for key, value in counts.items():
        testsuite.set(key, value)
    criteria = _criteria_suite(root, suite)
    for key, value in counts.items():
        extra = criteria.get(key, 0)
        root.set(key, value if not extra else str(int(value) + extra))
    stamp = _junit_timestamp(suite.get("started"))
    if stamp:
        testsuite.set("timestamp", stamp)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def console_table(suite: dict[str, Any]) -> Table:
    """The comparison table as a rich ``Table``."""
    totals = suite["totals"]
    overall = "[bold green]PASSED[/]" if totals["overall_passed"] else "[bold red]FAILED[/]"
    table = Table(
        title=f"{suite.get('title') or 'chaosray'}: {overall} "
        f"({totals['passed']} passed, {totals['failed']} failed"
        + (f", {totals['inconclusive']} inconclusive" if totals.get("inconclusive") else "")
        + (f", {totals['skipped']} skipped)" if totals.get("skipped") else ")"),
        box=box.SIMPLE_HEAVY,
    )
    for column in suite["comparison"]["columns"]:
        if column["key"] in ("experiment", "verdict"):
            table.add_column(str(column["title"]), justify="left", no_wrap=True)
        else:
            table.add_column(str(column["title"]), justify="right", overflow="fold")
    for row in suite["comparison"]["rows"]:
        if row["verdict"] == "skipped":
            verdict = Text("skipped", style="yellow")
        elif row["verdict"] == "inconclusive":
            verdict = Text("INCONCLUSIVE", style="bold yellow")
        elif row["passed"]:
            verdict = Text("passed", style="green")
        else:
            verdict = Text("FAILED", style="bold red")
        table.add_row(
            row["experiment"],
            verdict,
            fmt_rate(row["success_rate"]),
            fmt_ms(row["p50_ms"]),
            fmt_ms(row["p95_ms"]),
            fmt_ms(row["p99_ms"]),
            fmt_s(row["failure_equivalent_downtime_s"]),
            fmt_s(row["outage_time_s"]),
            fmt_recovery(row),
            fmt_share(row.get("budget_share")),
        )
    return table


# What an attributed window is (chaosray.causes): an outage window, or,
# when there was none, a run of consecutive failed requests.
_WINDOW_WORD = {"outage": "outage", "downtime": "failures"}


def comparison_table(comparison: dict[str, Any]) -> Table:
    """A comparison between two runs (chaosray.report.compare) as a rich ``Table``."""
    from chaosray.report.compare import COMPARISON_CAPTION, COMPARISON_HEADERS, comparison_lines

    word = "[bold red]REGRESSED[/]" if comparison["regressed"] else "[green]no regression[/]"
    table = Table(
        title=f"Compared with the baseline (alpha {comparison['alpha']:g}): {word}",
        caption=COMPARISON_CAPTION,
        caption_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    for header in COMPARISON_HEADERS:
        table.add_column(header, overflow="fold", no_wrap=header == "Experiment")
    for line in comparison_lines(comparison):
        style = "bold red" if line[-1] == "REGRESSION" else None
        table.add_row(*line[:-1], Text(line[-1], style=style or ""))
    return table


def render_comparison_console(
    comparison: dict[str, Any], *, width: int = 140, color: bool = False
) -> str:
    console = Console(
        record=True, width=width, file=io.StringIO(), force_terminal=color, color_system="standard"
    )
    console.print(comparison_table(comparison))
    for name in comparison.get("not_in_both") or []:
        console.print(Text(f"{name}: in one run only, not compared"))
    return console.export_text(styles=color)


def render_console(suite: dict[str, Any], *, width: int = 120, color: bool = False) -> str:
    """The console summary as a string: the comparison table, then each failed
    experiment's reasons, then each experiment's criteria count and every
    criterion that did not hold. Rendered with a rich ``Console(record=True)``;
    plain text by default, ANSI colours with ``color=True``. Print it as is."""
    console = Console(
        record=True, width=width, file=io.StringIO(), force_terminal=color, color_system="standard"
    )
    console.print(console_table(suite))
    if suite.get("baseline_comparison"):
        console.print(comparison_table(suite["baseline_comparison"]))
    budget = suite.get("budget")
    if budget:
        target = budget["slo"]["target"]
        console.print(
            Text(
                f"Error budget ({target:.3%} over {budget['slo']['period_days']:g} days: "
                f"{budget['period_budget_s']:.0f} s): the suite burned "
                f"{fmt_s(budget['consumed_s'])} = {fmt_share(budget['share'])} of it"
            )
        )
    for experiment in suite["experiments"]:
        windows = (experiment.get("outage_causes") or {}).get("windows") or []
        for window in windows[:5]:
            console.print(
                Text(
                    f"{experiment['name']}: {_WINDOW_WORD.get(window.get('kind'), 'outage')} "
                    f"at +{window['start_offset_s'] or 0:.1f} s "
                    f"({window['duration_s']:.1f} s) {window['nearest_event']}"
                    + "".join(f" [hint: {h['rule']}]" for h in window["hints"])
                )
            )
    for experiment in suite["experiments"]:
        if experiment["verdict"]["passed"]:
            continue
        if experiment["verdict"].get("skipped"):
            console.print(Text(f"{experiment['name']}: skipped", style="yellow"))
        else:
            console.print(Text(f"{experiment['name']}: failed", style="bold red"))
        for reason in experiment["verdict"]["reasons"]:
            console.print(Text(f"  - {reason['message']}"))
    for experiment in suite["experiments"]:
        disagreement = (experiment.get("availability_sources") or {}).get("disagreement")
        if disagreement:
            console.print(Text(f"{experiment['name']}: sources disagree: {disagreement}"))
    for experiment in suite["experiments"]:
        rows = ordered_criteria(experiment)
        if not rows:
            continue
        held = sum(r["state"] == "held" for r in rows)
        console.print(Text(f"{experiment['name']}: criteria {held} of {len(rows)} held"))
        for criterion in rows:
            if criterion["state"] != "held":
                console.print(
                    Text(
                        f"  {criterion['state'].upper()} {criterion['id']}: {criterion['message']}"
                    )
                )
    return console.export_text(styles=color)
