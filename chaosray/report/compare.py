"""Comparison between two suite runs (``chaosray.report.compare/v2``).

**The run is the unit.** Requests within one run are not independent: they
share the run's outage (one 20 s window fails a few hundred requests
together), and on the lab the same fault costs 0.1 s in one run and 22 s in
the next with the same code. A test that treats requests as independent
(Fisher's exact test on failed/total, a bootstrap of p99 over requests)
therefore says whether two *runs* differ, which they nearly always do, not
whether the *code* does. So, per scenario and figure (failure rate, p99
latency, outage time, each recovery time):

- each run (``--repeat``) gives one value; the sides are compared with
  Welch's t-test on those values (``scipy.stats.ttest_ind``,
  ``equal_var=False``): the analysis of cluster summaries that suits few
  clusters (Hayes & Moulton, *Cluster Randomised Trials*, 2nd ed., ch. 9).
  When a side's runs all gave one value (no outage in any run), the exact
  permutation test of the difference in means (``scipy.stats.
  permutation_test``) instead: Welch's test would trust that side's
  variance of 0. Either needs :data:`MIN_RUNS_FOR_TEST` runs a side;
- the p-values of every test of the comparison are adjusted together
  (Benjamini-Hochberg, ``scipy.stats.false_discovery_control``): with
  several scenarios and figures, unadjusted tests at 0.05 would flag about
  one figure in twenty for two runs of the same code;
- a change is **significant** when its adjusted p-value is below ``alpha``
  and the runs do not overlap (every run on one side beyond every run on
  the other), and a **regression** when it is significant and worse (more
  failures, slower, longer). Nothing else is ever called a regression.

**A recovery that timed out is censored, never dropped.** A recovery probe
that did not recover in time fails (``chaosray.contract.RecoveryTimeout``)
and its summary figure has no seconds. Such a run counts at its timeout, read
from the activity's error (the pods-Ready wait's "were Ready after 300s"): the
recovery took at least that long, so the value is a lower bound, and a
verdict on it is trusted only in the direction a lower bound supports (worse
when only the current side timed out). When every current run timed out and
every baseline run recovered, the figure is worse without a test (with a few
runs no test can reach alpha on it, and no recovery is the clearest
regression there is); likewise when a current run timed out and its timeout
is unknown (the error does not say it). Runs that timed out on both sides
are not tested: both are lower bounds.

Each figure also carries its **request-level** test (``request_level``),
which says whether these runs differ beyond chance at the request level:
Fisher's exact test (``scipy.stats.fisher_exact``) on the pooled failed/total
requests, and a bootstrap interval (``scipy.stats.bootstrap``) of the
difference in p99 over the pooled successful requests. They inform; they
never decide.

Pure: data in, data out (scipy computes; no files).
"""

from __future__ import annotations

import math
import re
import statistics
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__: list[str] = []  # pure logic, no activities

COMPARE_SCHEMA = "chaosray.report.compare/v2"
DEFAULT_ALPHA = 0.05
MIN_RUNS_FOR_TEST = 2
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 9999  # beyond (11 or more runs a side), a seeded random sample
MAX_LATENCIES = 20_000  # per side; beyond, a seeded random subsample
MIN_LATENCIES = 20  # fewer successful requests: no p99 (of a run, or bootstrap)

# What the pods-Ready wait (chaosray.k8s.probes.wait_for_ready_pods, also the
# first wait of ray_head_recovery and wait_for_redis_rejoin) says when it
# times out, each wording it has had. Its deadline counts from the
# disruption, so the activity's primary figure (disruption to Ready) is at
# least that long. Other timeouts (Redis replication, Ray workers
# reconnecting) bound a later stage, not the primary figure: unknown.
_NUMBER = r"(\d+(?:\.\d+)?(?:e[+-]?\d+)?)"
PODS_READY_TIMEOUTS = (
    re.compile(rf"were Ready after {_NUMBER}s\b"),
    re.compile(rf"were Ready {_NUMBER}s after the\b"),
    re.compile(rf"more than the {_NUMBER}s allowed\b"),
)
# Probes whose every recovery figure spans at least the pods-Ready wait from
# the disruption: when that wait timed out, each of their figures did too.
# (ray_head_recovery's workers_reconnect_s starts when the head is Ready.)
SPANS_FROM_DISRUPTION = ("wait_for_ready_pods", "wait_for_redis_rejoin")


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _change(base: float | None, current: float | None) -> float | None:
    return None if base is None or current is None else current - base


def _separation(base: Sequence[float], current: Sequence[float]) -> str | None:
    """``worse`` when every current run is above every baseline run,
    ``better`` when every one is below, None when the runs overlap."""
    if min(current) > max(base):
        return "worse"
    if max(current) < min(base):
        return "better"
    return None


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def runs_test(base: Sequence[float], current: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """The run-level test of per-run values (larger is worse): ``test``,
    ``p_value`` (unadjusted), ``separated`` (see :func:`_separation`), and
    ``why_no_test`` when there is no test.

    Welch's t-test when both sides vary. When a side does not (every run 0 s,
    say), Welch's test would take its variance of 0 at its word and call an
    outage that happens in some runs and not in others a change; the exact
    permutation test of the difference in means assumes nothing about the
    spread, and with few runs its smallest possible p-value says how little
    they can show (3 runs a side: 0.1)."""
    untested = {"test": None, "p_value": None, "separated": None}
    if len(base) < MIN_RUNS_FOR_TEST or len(current) < MIN_RUNS_FOR_TEST:
        why = f"fewer than {MIN_RUNS_FOR_TEST} runs with this figure on one side (--repeat)"
        return {**untested, "why_no_test": why}
    base_constant, current_constant = max(base) == min(base), max(current) == min(current)
    if base_constant and current_constant and base[0] == current[0]:
        return {**untested, "why_no_test": "every run on both sides gave the same value"}
    if base_constant or current_constant:
        result = stats.permutation_test(
            (np.asarray(current, dtype=float), np.asarray(base, dtype=float)),
            _mean_difference,
            permutation_type="independent",
            alternative="two-sided",
            vectorized=True,
            n_resamples=PERMUTATIONS,  # exact when there are no more arrangements
            random_state=np.random.default_rng(seed),
        )
        test, p_value = "permutation", float(result.pvalue)
    else:
        test = "welch_t"
        with warnings.catch_warnings():  # nearly equal values: scipy warns, the p is right
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(stats.ttest_ind(current, base, equal_var=False).pvalue)
    return {
        "test": test,
        "p_value": min(p_value, 1.0) if math.isfinite(p_value) else 1.0,
        "separated": _separation(base, current),
    }


def _figure(
    baseline: Any,
    current: Any,
    change: float | None,
    base_values: Sequence[float],
    current_values: Sequence[float],
    request_level: dict[str, Any] | None = None,
    *,
    timed_out: tuple[Sequence[float | None], Sequence[float | None]] = ((), ()),
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A figure's comparison: both sides, the change, the per-run values and
    the run-level test (its verdict is set once every p-value is adjusted,
    unless ``test`` decided it from timeouts: ``timeout_rule``)."""
    test = runs_test(base_values, current_values) if test is None else test
    rule = bool(test.get("timeout_rule"))
    return {
        "baseline": baseline,
        "current": current,
        "change": change,
        "baseline_values": list(base_values),
        "current_values": list(current_values),
        "baseline_timed_out": list(timed_out[0]),
        "current_timed_out": list(timed_out[1]),
        **test,
        "timeout_rule": rule,
        "p_adjusted": None,
        "significant": rule,
        "worse": rule and test["separated"] == "worse",
        "request_level": request_level,
    }


def fisher_requests(base: tuple[int, int], current: tuple[int, int]) -> dict[str, Any] | None:
    """Fisher's exact test on pooled (failed, requests); None without requests."""
    (f0, n0), (f1, n1) = base, current
    if not n0 or not n1:
        return None
    result = stats.fisher_exact([[f0, n0 - f0], [f1, n1 - f1]], alternative="two-sided")
    return {"test": "fisher_exact", "p_value": float(result.pvalue)}


def failed_requests_change(
    base_runs: Sequence[tuple[int, int]], current_runs: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """Per run (failed, requests): pooled counts and rates, the run-level
    test on each run's failure rate, and Fisher's test on the pooled counts."""
    base = (sum(f for f, _ in base_runs), sum(n for _, n in base_runs))
    now = (sum(f for f, _ in current_runs), sum(n for _, n in current_runs))
    rate0 = base[0] / base[1] if base[1] else None
    rate1 = now[0] / now[1] if now[1] else None
    return _figure(
        {"failed": base[0], "requests": base[1], "rate": rate0},
        {"failed": now[0], "requests": now[1], "rate": rate1},
        _change(rate0, rate1),
        [f / n for f, n in base_runs if n],
        [f / n for f, n in current_runs if n],
        fisher_requests(base, now),
    )


def _subsample(values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if len(array) > MAX_LATENCIES:
        array = rng.choice(array, size=MAX_LATENCIES, replace=False)
    return array


def p99_bootstrap(
    base: Sequence[float], current: Sequence[float], alpha: float, seed: int = 0
) -> dict[str, Any] | None:
    """A bootstrap interval of ``p99(current) - p99(base)`` over pooled
    latencies (ms); None with too few."""
    rng = np.random.default_rng(seed)
    x, y = _subsample(current, rng), _subsample(base, rng)
    if len(x) < MIN_LATENCIES or len(y) < MIN_LATENCIES:
        return None

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
    return {"test": "bootstrap", "interval": [low, high], "differs": low > 0 or high < 0}


def _p99s(runs: Sequence[Sequence[float]]) -> list[float]:
    return [float(np.percentile(run, 99)) for run in runs if len(run) >= MIN_LATENCIES]


def p99_change(
    base_runs: Sequence[Sequence[float]],
    current_runs: Sequence[Sequence[float]],
    alpha: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Per run, the latencies (ms) of its successful requests: each run's
    p99, their medians, the run-level test and the pooled bootstrap."""
    base_p99, now_p99 = _p99s(base_runs), _p99s(current_runs)
    median_base, median_now = _median(base_p99), _median(now_p99)
    pooled_base = [v for run in base_runs for v in run]
    pooled_now = [v for run in current_runs for v in run]
    return _figure(
        median_base,
        median_now,
        _change(median_base, median_now),
        base_p99,
        now_p99,
        p99_bootstrap(pooled_base, pooled_now, alpha, seed),
    )


def values_change(base: Sequence[float], current: Sequence[float]) -> dict[str, Any]:
    """Figures, one per run (seconds; larger is worse): medians and the
    run-level test."""
    median_base, median_now = _median(base), _median(current)
    return _figure(median_base, median_now, _change(median_base, median_now), base, current)


def _runs(values: Sequence[float], timed_out: Sequence[float | None]) -> int:
    """How many runs measured a figure: those with a value (a run that timed
    out at a known timeout has its timeout) and those that timed out at an
    unknown one."""
    return len(values) + sum(1 for t in timed_out if t is None)


def timed_out_test(
    base: Sequence[float],
    base_timed_out: Sequence[float | None],
    current: Sequence[float],
    current_timed_out: Sequence[float | None],
) -> dict[str, Any]:
    """The run-level test of per-run recovery times some of which timed out
    (``*_timed_out``: the timeout of each run that did, None when unknown;
    those at a known timeout are in ``base``/``current`` at their timeout, a
    lower bound). A side that timed out in every run (or in one at an
    unknown timeout) against one that recovered in every run is decided
    without a test (``timeout_rule``); runs that timed out on both sides are
    not tested; otherwise :func:`runs_test` on the values, whose verdict
    stands only in the direction the lower bounds support."""
    untested = {"test": None, "p_value": None, "separated": None}
    runs_base, runs_now = _runs(base, base_timed_out), _runs(current, current_timed_out)
    if min(runs_base, runs_now) < MIN_RUNS_FOR_TEST:
        why = f"fewer than {MIN_RUNS_FOR_TEST} runs with this figure on one side (--repeat)"
        return {**untested, "why_no_test": why}

    def did_not_recover(timed_out: Sequence[float | None], runs: int) -> bool:
        return bool(timed_out) and (len(timed_out) == runs or None in timed_out)

    if not base_timed_out and did_not_recover(current_timed_out, runs_now):
        why = "the baseline recovered in every run; the current timed out (no test: worse)"
        return {**untested, "separated": "worse", "why_no_test": why, "timeout_rule": True}
    if not current_timed_out and did_not_recover(base_timed_out, runs_base):
        why = "the baseline timed out; the current recovered in every run (no test: better)"
        return {**untested, "separated": "better", "why_no_test": why, "timeout_rule": True}
    if base_timed_out and current_timed_out:
        why = "runs timed out on both sides: their values are lower bounds, not comparable"
        return {**untested, "why_no_test": why}
    result = runs_test(base, current)
    # Lower bounds on one side: a change towards that side cannot be shown.
    unsupported = "better" if current_timed_out else "worse" if base_timed_out else None
    if unsupported is not None and result["separated"] == unsupported:
        result["separated"] = None
    return result


def recovery_change(
    base: Sequence[float],
    base_timed_out: Sequence[float | None],
    current: Sequence[float],
    current_timed_out: Sequence[float | None],
) -> dict[str, Any]:
    """A recovery figure, one value a run (seconds; larger is worse), some
    runs perhaps timed out (see :func:`timed_out_test`): medians (lower
    bounds when a side timed out; None when a side timed out at an unknown
    timeout) and the run-level test. The change is None when both sides
    timed out."""
    median_base = None if None in base_timed_out else _median(base)
    median_now = None if None in current_timed_out else _median(current)
    change = None if base_timed_out and current_timed_out else _change(median_base, median_now)
    return _figure(
        median_base,
        median_now,
        change,
        base,
        current,
        timed_out=(base_timed_out, current_timed_out),
        test=timed_out_test(base, base_timed_out, current, current_timed_out),
    )


def _side_runs(figure: dict[str, Any], side: str) -> int:
    return _runs(figure[f"{side}_values"], figure.get(f"{side}_timed_out") or [])


def _too_few_runs(figure: dict[str, Any]) -> bool:
    return min(_side_runs(figure, "baseline"), _side_runs(figure, "current")) < MIN_RUNS_FOR_TEST


def judge(rows: list[dict[str, Any]], alpha: float) -> None:
    """Adjust every run-level p-value of the comparison together
    (Benjamini-Hochberg) and set each figure's verdict in place: significant
    when the adjusted p-value is below ``alpha`` *and* the runs do not
    overlap. Welch's test alone is too eager on figures that jump between
    runs (an outage that happens in some runs and not in others); requiring
    every run on one side to be beyond every run on the other keeps such
    noise from being flagged."""
    tested = [f for row in rows for f in row["figures"].values() if f["p_value"] is not None]
    if tested:
        adjusted = stats.false_discovery_control([f["p_value"] for f in tested], method="bh")
        for figure, p_adjusted in zip(tested, adjusted, strict=True):
            figure["p_adjusted"] = float(p_adjusted)
            figure["significant"] = bool(p_adjusted < alpha) and figure["separated"] is not None
            figure["worse"] = figure["significant"] and figure["separated"] == "worse"
    for row in rows:
        figures = row["figures"]
        row["regressions"] = [name for name, f in figures.items() if f["worse"]]
        row["significant"] = [name for name, f in figures.items() if f["significant"]]
        row["too_few_runs"] = [name for name, f in figures.items() if _too_few_runs(f)]


def _numbers(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]


def _failures(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(int(r.get("failed") or 0), int(r.get("requests") or 0)) for r in rows]


def recovery_timeout(figure: dict[str, Any]) -> float | None:
    """The timeout (s) a recovery figure that timed out was waited for, from
    its activity's error (see :data:`PODS_READY_TIMEOUTS`); None when the
    error does not say."""
    error = figure.get("error")
    for pattern in PODS_READY_TIMEOUTS:
        found = pattern.search(error) if isinstance(error, str) else None
        if found:
            return float(found.group(1))
    return None


class _Recovery:
    """One recovery figure's runs on one side: ``values`` (recovered runs'
    seconds, and the timeout of those that timed out at a known one) and
    ``timed_out`` (the timeout of each run that timed out, None: unknown)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.timed_out: list[float | None] = []

    def add(self, seconds: float | None, timed_out: bool) -> None:
        if seconds is not None:
            self.values.append(seconds)
        if timed_out:
            self.timed_out.append(seconds)


def _recovery_key(figure: dict[str, Any]) -> str:
    return f"{figure['activity']}: {figure['metric']}"


def _metrics(experiments: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every recovery metric each activity gave in any of these runs."""
    out: dict[str, list[str]] = {}
    for experiment in experiments:
        for figure in experiment.get("recovery") or []:
            metrics = out.setdefault(figure["activity"], [])
            if figure["metric"] not in metrics:
                metrics.append(figure["metric"])
    return out


def _recoveries(
    experiments: list[dict[str, Any]], metrics: dict[str, list[str]]
) -> dict[str, _Recovery]:
    """Recovery figures by ``activity: metric``, one entry per run. A figure
    of an activity that failed (it did not recover in time) timed out; so did
    every other metric of that activity in ``metrics`` (what the runs that
    recovered gave), which the failed run could not give. A figure with no
    seconds from an activity that did not fail (interrupted; succeeded with
    nothing to measure) measured nothing."""
    out: dict[str, _Recovery] = {}
    for experiment in experiments:
        figures = experiment.get("recovery") or []
        given = {_recovery_key(f) for f in figures}
        for figure in figures:
            seconds = figure.get("seconds")
            key = _recovery_key(figure)
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                out.setdefault(key, _Recovery()).add(float(seconds), timed_out=False)
                continue
            if seconds is not None or figure.get("status") != "failed":
                continue
            timeout = recovery_timeout(figure)
            out.setdefault(key, _Recovery()).add(timeout, timed_out=True)
            func = str(figure.get("func") or "").rsplit(".", 1)[-1]
            for metric in metrics.get(figure["activity"], []):
                other = f"{figure['activity']}: {metric}"
                if other not in given:
                    given.add(other)
                    bound = timeout if func in SPANS_FROM_DISRUPTION else None
                    out.setdefault(other, _Recovery()).add(bound, timed_out=True)
    return out


def compare_suites(
    baseline: dict[str, Any],
    current: dict[str, Any],
    baseline_latencies: dict[str, list[list[float]]] | None = None,
    current_latencies: dict[str, list[list[float]]] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two ``chaosray.report.suite/v1`` documents. ``*_latencies``:
    per experiment name, one list per run of the latencies (ms) of its
    successful requests (from the monitor's samples; missing: no p99)."""
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
        metrics = _metrics(before + after)
        recoveries_before, recoveries_after = (
            _recoveries(before, metrics),
            _recoveries(after, metrics),
        )
        measured = any(n for _, n in _failures(availability_before + availability_after))
        if not measured and not set(recoveries_before) & set(recoveries_after):
            unmeasured.append(name)  # a validation: nothing to compare
            continue
        figures: dict[str, Any] = {
            "failed_requests": failed_requests_change(
                _failures(availability_before), _failures(availability_after)
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
            ),
        }
        for key in sorted(set(recoveries_before) | set(recoveries_after)):
            # A figure on one side only (say, every current run timed out
            # before giving it) is still a row: never dropped.
            base, now = (
                recoveries_before.get(key, _Recovery()),
                recoveries_after.get(key, _Recovery()),
            )
            figures[f"recovery {key}"] = recovery_change(
                base.values, base.timed_out, now.values, now.timed_out
            )
        rows.append(
            {"experiment": name, "runs": {"baseline": len(before), "current": len(after)},
             "figures": figures}
        )  # fmt: skip
    judge(rows, alpha)
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
        "too_few_runs": [r["experiment"] for r in rows if r["too_few_runs"]],
        "regressed": any(r["regressions"] for r in rows),
        "regressions": [f"{r['experiment']}: {f}" for r in rows for f in r["regressions"]],
    }


def too_few_runs_message(comparison: dict[str, Any]) -> str | None:
    """Why ``--fail-on-regression`` cannot judge this comparison, or None."""
    listed = [
        f"{row['experiment']}: {name} ({_side_runs(f, 'baseline')} baseline, "
        f"{_side_runs(f, 'current')} current)"
        for row in comparison["rows"]
        for name, f in row["figures"].items()
        if name in row["too_few_runs"]
    ]
    if not listed:
        return None
    return (
        f"--fail-on-regression needs at least {MIN_RUNS_FOR_TEST} runs that measured each "
        f"figure on each side to tell a regression from run-to-run variation; too few: "
        f"{'; '.join(listed)} (run the suite with --repeat {MIN_RUNS_FOR_TEST} or more)"
    )


# --- renderers ----------------------------------------------------------------------------


def _fmt(figure: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if figure == "failed_requests":
        return f"{value * 100:+.3f} pp"
    return f"{value:+.1f} ms" if figure == "p99_ms" else f"{value:+.2f} s"


def _change_cell(figure: str, change: dict[str, Any]) -> str:
    """The change; a bound when one side timed out (its values are lower bounds)."""
    text = _fmt(figure, change["change"])
    if text == "-":
        return text
    if change.get("current_timed_out"):
        return f">= {text}"
    return f"<= {text}" if change.get("baseline_timed_out") else text


def _side(figure: str, change: dict[str, Any], side: str) -> str:
    value = change[side]
    if figure == "failed_requests":
        return f"{value['failed']}/{value['requests']}" if value["requests"] else "-"
    timed_out = change.get(f"{side}_timed_out") or []
    if timed_out:
        runs = _side_runs(change, side)
        some = "" if len(timed_out) == runs else f"{len(timed_out)} of {runs} "
        if None in timed_out:
            return f"{some}timed out (timeout unknown)"
        if not some:
            return f">= {min(t for t in timed_out if t is not None):g} s (timed out)"
        return f">= {value:.2f} s ({some}timed out)"
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.1f} ms" if figure == "p99_ms" else f"{value:.2f} s"


COMPARISON_CAPTION = (
    "Runs: how many runs measured the figure (baseline:current). Runs test: Welch's t-test "
    "on the per-run values (the exact permutation test when a side's runs all gave one "
    "value), p-values adjusted together (Benjamini-Hochberg); a change is significant below "
    f"alpha when the runs do not overlap; it needs {MIN_RUNS_FOR_TEST} or more runs a side "
    "(suite run --repeat) and decides. A recovery that timed out counts at its timeout, a "
    "lower bound (>= N s); timed out in every current run while the baseline recovered (or "
    "at an unknown timeout): worse without a test. Requests: whether these runs differ "
    "(Fisher's exact test, p99 bootstrap interval); it informs only."
)


def _test(change: dict[str, Any]) -> str:
    timed_out = change.get("baseline_timed_out"), change.get("current_timed_out")
    if change["test"] is None:  # the reasons there is none, short (the caption explains)
        if _too_few_runs(change):
            return "too few runs"
        if change.get("timeout_rule"):
            return "none: timed out"
        return "timed out both sides" if all(timed_out) else "all runs equal"
    name = "perm. " if change["test"] == "permutation" else ""
    bounds = " (timed-out runs: lower bounds)" if any(timed_out) else ""
    return f"{name}p={change['p_value']:.2g}, adj. {change['p_adjusted']:.2g}{bounds}"


def _request_level(change: dict[str, Any]) -> str:
    """Whether these runs differ at the request level (informative only)."""
    level = change.get("request_level")
    if not level:
        return "-"
    if level["test"] == "bootstrap":
        low, high = level["interval"]
        return f"p99 {low:+.1f}..{high:+.1f} ms"
    return f"Fisher p={level['p_value']:.3g}"


def comparison_lines(comparison: dict[str, Any]) -> list[list[str]]:
    """One line a scenario and figure: experiment, figure, baseline, current,
    change, run-level test, request-level test, verdict (``REGRESSION``,
    ``better``, ``no significant change`` or ``not tested``)."""
    lines = []
    for row in comparison["rows"]:
        for figure, change in row["figures"].items():
            runs = f"{_side_runs(change, 'baseline')}:{_side_runs(change, 'current')}"
            if change["worse"]:  # tested, or timed out against recovered (timeout_rule)
                verdict = "REGRESSION"
            elif change["significant"]:
                verdict = "better"
            else:
                verdict = "not tested" if change["test"] is None else "no significant change"
            lines.append(
                [
                    row["experiment"],
                    figure,
                    runs,
                    _side(figure, change, "baseline"),
                    _side(figure, change, "current"),
                    _change_cell(figure, change),
                    _test(change),
                    _request_level(change),
                    verdict,
                ]
            )
    return lines


COMPARISON_HEADERS = [
    "Experiment", "Figure", "Runs", "Baseline", "Current", "Change",
    "Runs test (decides)", "Requests (informs)", "Verdict",
]  # fmt: skip


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
