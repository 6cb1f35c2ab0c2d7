"""Comparison between two suite runs (``chaosray.report.compare/v1``).

Per scenario (every repeat of a run pooled), the change from the baseline
run to the current one in:

- **failed requests**: failed / total on each side, with Fisher's exact test
  on the 2 x 2 table (``scipy.stats.fisher_exact``, two-sided);
- **p99 latency**: of the successful requests, with a bootstrap confidence
  interval of the difference ``p99(current) - p99(baseline)``
  (``scipy.stats.bootstrap``, independent samples, percentile method) from
  the monitor's per-request samples;
- **outage time** and **each recovery time**: with the Mann-Whitney U test
  (``scipy.stats.mannwhitneyu``, two-sided) when both sides have at least
  :data:`MIN_RUNS_FOR_TEST` repeats; with fewer, the change is reported and
  no test is made (one run each says nothing about noise).

A change is **significant** when its test rejects "no change" at ``alpha``
(p < alpha, or a bootstrap interval that excludes 0), and a **regression**
when it is significant and worse (more failures, slower, longer). Nothing
else is ever called a regression.

Pure: data in, data out (scipy computes; no files).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__: list[str] = []  # pure logic, no activities

COMPARE_SCHEMA = "chaosray.report.compare/v1"
DEFAULT_ALPHA = 0.05
MIN_RUNS_FOR_TEST = 3
BOOTSTRAP_RESAMPLES = 2000
MAX_LATENCIES = 20_000  # per side; beyond, a seeded random subsample
MIN_LATENCIES = 20  # fewer successful requests: no p99 test


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _change(base: float | None, current: float | None) -> float | None:
    return None if base is None or current is None else current - base


def _figure(baseline: Any, current: Any, change: float | None, **extra: Any) -> dict[str, Any]:
    """A figure's comparison before any test: both sides, the change, untested."""
    return {
        "baseline": baseline,
        "current": current,
        **extra,
        "change": change,
        "test": None,
        "p_value": None,
        "significant": False,
        "worse": False,
    }


def _failures(rows: list[dict[str, Any]]) -> tuple[int, int]:
    failed = sum(int(r.get("failed") or 0) for r in rows)
    requests = sum(int(r.get("requests") or 0) for r in rows)
    return failed, requests


def failed_requests_change(
    base: tuple[int, int], current: tuple[int, int], alpha: float
) -> dict[str, Any]:
    """``base``/``current``: (failed, requests). Fisher's exact test."""
    (f0, n0), (f1, n1) = base, current
    rate0, rate1 = (f0 / n0 if n0 else None), (f1 / n1 if n1 else None)
    out = _figure(
        {"failed": f0, "requests": n0, "rate": rate0},
        {"failed": f1, "requests": n1, "rate": rate1},
        _change(rate0, rate1),
    )
    if not n0 or not n1:
        out["why_no_test"] = "no requests on one side"
        return out
    result = stats.fisher_exact([[f0, n0 - f0], [f1, n1 - f1]], alternative="two-sided")
    p_value = float(result.pvalue)
    significant = p_value < alpha
    out.update(
        test="fisher_exact",
        p_value=p_value,
        significant=significant,
        worse=significant and f1 / n1 > f0 / n0,
    )
    return out


def _subsample(values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if len(array) > MAX_LATENCIES:
        array = rng.choice(array, size=MAX_LATENCIES, replace=False)
    return array


def p99_change(
    base: Sequence[float], current: Sequence[float], alpha: float, seed: int = 0
) -> dict[str, Any]:
    """``base``/``current``: latencies (ms) of successful requests. A
    bootstrap interval of ``p99(current) - p99(base)``."""
    rng = np.random.default_rng(seed)
    x, y = _subsample(current, rng), _subsample(base, rng)
    p99_base = float(np.percentile(y, 99)) if len(y) else None
    p99_now = float(np.percentile(x, 99)) if len(x) else None
    out = _figure(p99_base, p99_now, _change(p99_base, p99_now), interval=None)
    if len(x) < MIN_LATENCIES or len(y) < MIN_LATENCIES:
        out["why_no_test"] = f"fewer than {MIN_LATENCIES} latencies on one side"
        return out

    def difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> Any:
        return np.percentile(a, 99, axis=axis) - np.percentile(b, 99, axis=axis)

    result = stats.bootstrap(
        (x, y),
        difference,
        vectorized=True,
        paired=False,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=1.0 - alpha,
        method="percentile",
        batch=100,
        random_state=rng,
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    significant = low > 0 or high < 0
    out.update(
        test="bootstrap",
        interval=[low, high],
        significant=significant,
        worse=low > 0,
    )
    return out


def values_change(base: Sequence[float], current: Sequence[float], alpha: float) -> dict[str, Any]:
    """Figures, one per repeat (seconds; larger is worse): medians, and the
    Mann-Whitney U test when each side has enough runs."""
    median_base, median_now = _median(base), _median(current)
    out = _figure(
        median_base,
        median_now,
        _change(median_base, median_now),
        baseline_values=list(base),
        current_values=list(current),
    )
    if len(base) < MIN_RUNS_FOR_TEST or len(current) < MIN_RUNS_FOR_TEST:
        out["why_no_test"] = f"fewer than {MIN_RUNS_FOR_TEST} runs on one side (--repeat)"
        return out
    p_value = float(stats.mannwhitneyu(current, base, alternative="two-sided").pvalue)
    significant = p_value < alpha
    out.update(
        test="mann_whitney_u",
        p_value=p_value,
        significant=significant,
        worse=significant and (out["change"] or 0) > 0,
    )
    return out


def _numbers(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]


def _recoveries(experiments: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Recovery figures by ``activity: metric``, one value per run."""
    out: dict[str, list[float]] = {}
    for experiment in experiments:
        for figure in experiment.get("recovery") or []:
            if isinstance(figure.get("seconds"), int | float):
                key = f"{figure['activity']}: {figure['metric']}"
                out.setdefault(key, []).append(float(figure["seconds"]))
    return out


def compare_suites(
    baseline: dict[str, Any],
    current: dict[str, Any],
    baseline_latencies: dict[str, list[float]] | None = None,
    current_latencies: dict[str, list[float]] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two ``chaosray.report.suite/v1`` documents. ``*_latencies``:
    per experiment name, the latencies (ms) of its successful requests over
    all its repeats (from the monitor's samples; missing: no p99 test)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    baseline_latencies = baseline_latencies or {}
    current_latencies = current_latencies or {}
    names = [e["name"] for e in current["experiments"]]
    names = list(dict.fromkeys(n for n in names if any(
        e["name"] == n for e in baseline["experiments"])))  # fmt: skip
    rows: list[dict[str, Any]] = []
    unmeasured: list[str] = []
    for index, name in enumerate(names):
        before = [e for e in baseline["experiments"] if e["name"] == name]
        after = [e for e in current["experiments"] if e["name"] == name]
        availability_before = [e["availability"] for e in before]
        availability_after = [e["availability"] for e in after]
        figures: dict[str, Any] = {
            "failed_requests": failed_requests_change(
                _failures(availability_before), _failures(availability_after), alpha
            ),
            "p99_ms": p99_change(
                baseline_latencies.get(name, []),
                current_latencies.get(name, []),
                alpha,
                seed + index,
            ),
            "outage_time_s": values_change(
                _numbers(availability_before, "outage_time_s"),
                _numbers(availability_after, "outage_time_s"),
                alpha,
            ),
        }
        recoveries_before, recoveries_after = _recoveries(before), _recoveries(after)
        measured = _failures(availability_before)[1] or _failures(availability_after)[1]
        if not measured and not set(recoveries_before) & set(recoveries_after):
            unmeasured.append(name)  # a validation: nothing to compare
            continue
        for key in sorted(set(recoveries_before) & set(recoveries_after)):
            figures[f"recovery {key}"] = values_change(
                recoveries_before[key], recoveries_after[key], alpha
            )
        regressions = [figure for figure, change in figures.items() if change["worse"]]
        rows.append(
            {
                "experiment": name,
                "runs": {"baseline": len(before), "current": len(after)},
                "figures": figures,
                "regressions": regressions,
                "significant": [f for f, c in figures.items() if c["significant"]],
            }
        )
    only = sorted(
        {e["name"] for e in baseline["experiments"]} ^ {e["name"] for e in current["experiments"]}
    )
    return {
        "schema": COMPARE_SCHEMA,
        "alpha": alpha,
        "baseline": {"started": baseline.get("started"), **dict(baseline.get("metadata") or {})},
        "current": {"started": current.get("started"), **dict(current.get("metadata") or {})},
        "rows": rows,
        "not_in_both": only,
        "not_measured": unmeasured,
        "regressed": any(r["regressions"] for r in rows),
        "regressions": [f"{r['experiment']}: {f}" for r in rows for f in r["regressions"]],
    }


# --- renderers ----------------------------------------------------------------------------


def _fmt(figure: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if figure == "failed_requests":
        return f"{value * 100:+.3f} pp"
    return f"{value:+.1f} ms" if figure == "p99_ms" else f"{value:+.2f} s"


def _side(figure: str, change: dict[str, Any], side: str) -> str:
    value = change[side]
    if figure == "failed_requests":
        return f"{value['failed']}/{value['requests']}" if value["requests"] else "-"
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.1f} ms" if figure == "p99_ms" else f"{value:.2f} s"


def _test(change: dict[str, Any]) -> str:
    if change["test"] is None:
        return f"no test ({change.get('why_no_test', '')})"
    if change["test"] == "bootstrap":
        low, high = change["interval"]
        return f"bootstrap {low:+.1f}..{high:+.1f} ms"
    return f"{change['test']} p={change['p_value']:.3g}"


def comparison_lines(comparison: dict[str, Any]) -> list[list[str]]:
    """One line a scenario and figure: experiment, figure, baseline, current,
    change, test, verdict (``REGRESSION``, ``better``, ``no significant
    change`` or ``not tested``)."""
    lines = []
    for row in comparison["rows"]:
        for figure, change in row["figures"].items():
            if change["test"] is None:
                verdict = "not tested"
            elif change["worse"]:
                verdict = "REGRESSION"
            else:
                verdict = "better" if change["significant"] else "no significant change"
            lines.append(
                [
                    row["experiment"],
                    figure,
                    _side(figure, change, "baseline"),
                    _side(figure, change, "current"),
                    _fmt(figure, change["change"]),
                    _test(change),
                    verdict,
                ]
            )
    return lines


COMPARISON_HEADERS = ["Experiment", "Figure", "Baseline", "Current", "Change", "Test", "Verdict"]


def render_comparison_junit(comparison: dict[str, Any]) -> str:
    """JUnit XML: one test case per scenario, a ``<failure>`` per regression."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name="chaosray comparison",
        tests=str(len(comparison["rows"])),
        failures=str(sum(1 for r in comparison["rows"] if r["regressions"])),
    )
    lines = comparison_lines(comparison)
    for row in comparison["rows"]:
        case = ET.SubElement(
            suite, "testcase", classname="chaosray.compare", name=row["experiment"]
        )
        mine = [" | ".join(line[1:]) for line in lines if line[0] == row["experiment"]]
        if row["regressions"]:
            failure = ET.SubElement(
                case, "failure", message="regression: " + ", ".join(row["regressions"])
            )
            failure.text = "\n".join(mine)
        else:
            ET.SubElement(case, "system-out").text = "\n".join(mine)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
