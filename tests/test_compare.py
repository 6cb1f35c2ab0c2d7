"""Comparison between runs: `chaosray compare` on saved results folders, one
pair with a real regression (many more failed requests, slower p99) and
one with noise only (the same service measured twice). The folders are
written the way the suite writes them: summaries built from journals by
chaosray.report, and the monitor's per-request samples files."""

from __future__ import annotations

import json
import random
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosray.cli import main
from chaosray.contract import RECOVERIES_KEY, RecoveryTimeout, recovery
from chaosray.report import render_json, summarize_experiment, summarize_suite
from chaosray.report.compare import compare_suites, comparison_lines, runs_test
from chaosray.report.suite import repeats

T0 = 1_700_000_000.0
RATE = 10.0


def _samples(seed: int, requests: int, failed: int, latency_ms: float) -> list[dict[str, Any]]:
    """A monitor's samples: ``failed`` failures in one run in the middle,
    latencies log-normal around ``latency_ms``."""
    rng = random.Random(seed)
    first_failed = requests // 2
    rows = []
    for i in range(requests):
        ok = not first_failed <= i < first_failed + failed
        latency = rng.lognormvariate(0, 0.3) * latency_ms / 1000.0
        rows.append({"sent": T0 + i / RATE, "ok": ok, "latency": latency if ok else 2.0})
    return rows


def _journal(samples: list[dict[str, Any]], recovery_s: float) -> dict[str, Any]:
    requests, failed = len(samples), sum(1 for s in samples if not s["ok"])
    block = {
        "requests": requests, "failed": failed, "success_rate": 1 - failed / requests,
        "latency_s": {}, "downtime_windows": [], "total_downtime_s": failed / RATE,
        "longest_outage_s": failed / RATE, "failure_equivalent_downtime_s": failed / RATE,
        "outage_time_s": failed / RATE, "still_down": False, "samples_path": "x",
    }  # fmt: skip
    return {
        "experiment": {"title": "worker-delete"},
        "status": "completed",
        "start": T0,
        "end": T0 + requests / RATE,
        "steady_states": {},
        "rollbacks": [],
        "run": [
            {"activity": {"type": "probe", "name": "monitor",
                          "provider": {"type": "python", "module": "m", "func": "f"}},
             "status": "succeeded", "start": T0, "output": {"availability": block}},
            {"activity": {"type": "probe", "name": "replacement-ready",
                          "provider": {"type": "python", "module": "m", "func": "g"}},
             "status": "succeeded", "start": T0,
             "output": {"recoveries": [{"metric": "recovery_s", "seconds": recovery_s,
                                        "since": None, "since_source": None,
                                        "recovered_at": None, "primary": True}]}},
        ],
    }  # fmt: skip


def _results(folder: Path, runs: list[tuple[int, int, float, float]]) -> Path:
    """A results folder with one worker-delete run per (seed, failed,
    latency_ms, recovery_s)."""
    folder.mkdir(parents=True)
    summaries = []
    for index, (seed, failed, latency_ms, recovery_s) in enumerate(runs, start=1):
        samples = _samples(seed, 3000, failed, latency_ms)
        stem = f"worker-delete.r{index}" if len(runs) > 1 else "worker-delete"
        (folder / f"{stem}.samples.jsonl").write_text(
            "".join(json.dumps(s) + "\n" for s in samples)
        )
        summary = summarize_experiment(_journal(samples, recovery_s), samples, name="worker-delete")
        summary["repeat"] = index if len(runs) > 1 else None
        summary["files"] = {"samples": f"{stem}.samples.jsonl"}
        summaries.append(summary)
    suite = summarize_suite(summaries, "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00")
    (folder / "summary.json").write_text(render_json(suite))
    return folder


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """Three runs a side (seed, failed of 3000, latency ms, recovery s)."""
    return {
        "baseline": _results(tmp_path / "a", [(1, 6, 20.0, 95.0), (2, 4, 20.0, 99.0),
                                              (3, 9, 20.0, 93.0)]),
        # The same service again: other random draws, other counts.
        "noise": _results(tmp_path / "b", [(4, 8, 20.0, 97.0), (5, 3, 20.0, 94.0),
                                           (6, 7, 20.0, 98.0)]),
        # A regression in every run: 80-95 failed requests, a 60 % slower tail,
        # a slower replacement.
        "regressed": _results(tmp_path / "c", [(7, 90, 32.0, 140.0), (8, 80, 32.0, 138.0),
                                               (9, 95, 32.0, 145.0)]),
    }  # fmt: skip


def test_noise_is_not_flagged(folders: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    junit = tmp_path / "cmp.xml"
    code = main(
        ["compare", str(folders["baseline"]), str(folders["noise"]), "--fail-on-regression",
         "--json", str(out), "--junit", str(junit)]
    )  # fmt: skip
    assert code == 0
    comparison = json.loads(out.read_text())
    (row,) = comparison["rows"]
    assert row["runs"] == {"baseline": 3, "current": 3}
    failed = row["figures"]["failed_requests"]
    assert (failed["baseline"]["failed"], failed["current"]["failed"]) == (19, 18)
    assert failed["baseline_values"] == [6 / 3000, 4 / 3000, 9 / 3000]
    assert failed["test"] == "welch_t" and failed["p_adjusted"] >= failed["p_value"] > 0.5
    assert failed["request_level"]["test"] == "fisher_exact"
    p99 = row["figures"]["p99_ms"]
    assert p99["test"] == "welch_t" and len(p99["current_values"]) == 3
    low, high = p99["request_level"]["interval"]
    assert low < 0 < high
    assert comparison["regressed"] is False and row["regressions"] == []
    assert comparison["not_measured"] == [] and comparison["too_few_runs"] == []
    assert not ET.parse(junit).getroot().findall(".//failure")


def test_a_real_regression_is_flagged_and_fails_on_request(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp.json"
    assert main(["compare", str(folders["baseline"]), str(folders["regressed"])]) == 0
    code = main(
        ["compare", str(folders["baseline"]), str(folders["regressed"]), "--fail-on-regression",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 1
    comparison = json.loads(out.read_text())
    (row,) = comparison["rows"]
    assert row["regressions"] == [
        "failed_requests", "p99_ms", "outage_time_s", "recovery replacement-ready: recovery_s"
    ]  # fmt: skip
    failed = row["figures"]["failed_requests"]
    assert failed["p_adjusted"] < 0.05 and failed["request_level"]["p_value"] < 1e-6
    recovery = row["figures"]["recovery replacement-ready: recovery_s"]
    assert recovery["change"] == 140.0 - 95.0  # medians
    printed = capsys.readouterr().out
    assert "REGRESSION" in printed and "REGRESSED" in printed


def _outage_runs(folder: Path, failed: list[int]) -> Path:
    return _results(folder, [(30 + i, n, 20.0, 95.0) for i, n in enumerate(failed)])


def test_runs_that_differ_by_one_outage_are_not_a_regression(tmp_path: Path) -> None:
    """What the lab shows for sequential-worker-delete with the same code: one
    run in a few loses ~240 requests to a 24 s outage, the others 2 or 3.
    Requests differ beyond doubt (Fisher), runs do not: nothing is flagged."""
    before = _outage_runs(tmp_path / "a", [2, 3])
    after = _outage_runs(tmp_path / "b", [240, 4])
    same = compare_suites(*_suites(before, after))
    failed = same["rows"][0]["figures"]["failed_requests"]
    assert failed["request_level"]["p_value"] < 1e-50
    assert failed["test"] == "welch_t" and failed["p_value"] > 0.3
    assert failed["significant"] is False and same["regressed"] is False
    # One run a side: the request-level test sees the 24 s outage, and no
    # run-level test is made, so nothing is flagged either.
    single = compare_suites(*_suites(_outage_runs(tmp_path / "c", [2]),
                                     _outage_runs(tmp_path / "d", [240])))  # fmt: skip
    failed = single["rows"][0]["figures"]["failed_requests"]
    assert failed["request_level"]["p_value"] < 1e-50
    assert failed["test"] is None and failed["why_no_test"].startswith("fewer than 2 runs")
    assert single["regressed"] is False and single["too_few_runs"] == ["worker-delete"]


def test_an_improvement_is_better_not_a_regression(
    folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", str(folders["regressed"]), str(folders["baseline"]),
                 "--fail-on-regression"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "better" in printed and "REGRESSION" not in printed
    (row,) = compare_suites(*_suites(folders["regressed"], folders["baseline"]))["rows"]
    assert row["regressions"] == [] and "failed_requests" in row["significant"]
    assert row["figures"]["failed_requests"]["separated"] == "better"


def test_overlapping_runs_are_never_significant() -> None:
    """Welch's test alone calls this a change (p < 0.001): eight runs at 1 s
    and one at 5 s against eight at 4 s and one at 4.5 s. The runs overlap,
    so it is not."""
    from chaosray.report.compare import judge

    base, current = [1.0] * 8 + [5.0], [4.0] * 8 + [4.5]
    figure = runs_test(base, current)
    assert figure["test"] == "welch_t"
    assert figure["p_value"] < 0.001 and figure["separated"] is None
    figure.update(baseline_values=base, current_values=current)  # as _figure holds them
    rows: list[dict[str, Any]] = [{"figures": {"x": figure}}]
    judge(rows, 0.05)
    assert figure["significant"] is False and rows[0]["regressions"] == []


def test_a_run_that_measured_nothing_is_not_a_run(tmp_path: Path) -> None:
    """A skipped run (pre-validation failed) is in the summary but measured
    nothing: with it, the baseline has one run that counts, and
    --fail-on-regression refuses to judge rather than pass untested."""
    before = _outage_runs(tmp_path / "a", [2, 3])
    summary = json.loads((before / "summary.json").read_text())
    skipped = summary["experiments"][1]
    skipped["availability"].update(requests=None, failed=None, outage_time_s=None)
    skipped["recovery"] = []
    (before / "summary.json").write_text(json.dumps(summary))
    (before / "worker-delete.r2.samples.jsonl").unlink()
    after = _outage_runs(tmp_path / "b", [2, 40])
    comparison = compare_suites(*_suites(before, after))
    (row,) = comparison["rows"]
    assert row["figures"]["failed_requests"]["baseline_values"] == [2 / 3000]
    assert comparison["too_few_runs"] == ["worker-delete"]
    assert "failed_requests" in row["too_few_runs"]
    assert main(["compare", str(before), str(after), "--fail-on-regression"]) == 2
    code = main(["suite", "run", "--results-dir", str(tmp_path / "results"), "--baseline",
                 str(before), "--fail-on-regression", "--repeat", "2"])  # fmt: skip
    assert code == 2 and not (tmp_path / "results").exists()


def _suites(*folders: Path) -> list[Any]:
    from chaosray.suite.results import load_latencies

    suites = [json.loads((f / "summary.json").read_text()) for f in folders]
    return [*suites, *(load_latencies(f, s) for f, s in zip(folders, suites, strict=True))]


def test_fail_on_regression_refuses_to_judge_single_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _outage_runs(tmp_path / "a", [2])
    after = _outage_runs(tmp_path / "b", [240])
    assert main(["compare", str(before), str(after)]) == 0
    code = main(["compare", str(before), str(after), "--fail-on-regression"])
    out = capsys.readouterr().out
    assert code == 2 and "Traceback" not in out
    assert "needs at least 2 runs that measured each figure on each side" in out
    assert "worker-delete: failed_requests (1 baseline, 1 current)" in out


def test_many_figures_are_adjusted_together() -> None:
    """Benjamini-Hochberg over the whole comparison: a p-value that passes on
    its own (0.02) is not significant among twenty tests of noise."""
    from chaosray.report.compare import judge

    def figure(p_value: float) -> dict[str, Any]:
        return {"p_value": p_value, "separated": "worse", "significant": False, "worse": False,
                "baseline_values": [1.0, 1.1], "current_values": [2.0, 2.1]}  # fmt: skip

    rows: list[dict[str, Any]] = [
        {"figures": {"a": figure(0.02), **{f"n{i}": figure(0.5) for i in range(19)}}}
    ]
    judge(rows, 0.05)
    assert rows[0]["figures"]["a"]["p_adjusted"] == pytest.approx(0.4)
    assert rows[0]["regressions"] == []
    rows = [{"figures": {"a": figure(0.02)}}]
    judge(rows, 0.05)
    assert rows[0]["regressions"] == ["a"]


def test_repeats_are_summarised_pooled_and_tested(tmp_path: Path) -> None:
    before = _results(tmp_path / "a", [(10 + i, 5, 20.0, 90.0 + i) for i in range(4)])
    after = _results(tmp_path / "b", [(20 + i, 5, 20.0, 130.0 + i) for i in range(4)])
    base_suite = json.loads((before / "summary.json").read_text())
    assert base_suite["repeats"]["worker-delete"]["runs"] == 4
    recovery = base_suite["repeats"]["worker-delete"]["figures"]["key_recovery_s"]
    assert (recovery["median"], recovery["min"], recovery["max"]) == (91.5, 90.0, 93.0)
    assert main(["compare", str(before), str(after), "--fail-on-regression"]) == 1
    (row,) = compare_suites(*_suites(before, after))["rows"]
    assert row["runs"] == {"baseline": 4, "current": 4}
    failed = row["figures"]["failed_requests"]
    assert (failed["baseline"]["failed"], failed["baseline"]["requests"]) == (20, 12000)
    # The same 5 failures in every run: nothing to test, no flag.
    assert failed["why_no_test"] == "every run on both sides gave the same value"
    change = row["figures"]["recovery replacement-ready: recovery_s"]
    assert change["baseline_values"] == [90.0, 91.0, 92.0, 93.0]
    assert change["test"] == "welch_t" and change["p_adjusted"] < 1e-6
    assert row["regressions"] == ["recovery replacement-ready: recovery_s"]


def test_runs_test_needs_two_runs_a_side_and_some_spread() -> None:
    assert runs_test([1.0], [9.0, 9.5])["test"] is None
    assert runs_test([0.0, 0.0], [0.0, 0.0])["why_no_test"] == (
        "every run on both sides gave the same value"
    )
    # A constant side: the exact permutation test, whose smallest p-value
    # with 2 and 3 runs a side is 1/3 and 1/10 (two-sided).
    assert runs_test([0.0, 0.0], [0.1, 0.1]) == pytest.approx(
        {"test": "permutation", "p_value": 1 / 3, "separated": "worse"}
    )
    assert runs_test([0.0, 0.0, 0.0], [23.0, 22.5, 24.1])["p_value"] == pytest.approx(0.1)
    # Welch's test alone gives 0.001 here (it takes the zeros' variance of 0 at its word).
    assert runs_test([3.0, 3.0, 3.0, 3.0, 3.0], [4.0, 5.0, 4.0, 6.0, 5.0])["p_value"] == (
        pytest.approx(2 / 252)
    )
    assert runs_test([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])["p_value"] > 0.5
    assert runs_test([1.0, 1.1, 0.9], [9.0, 9.5, 9.2])["p_value"] < 0.001


def test_repeat_block_of_a_single_run_is_empty() -> None:
    assert repeats([{"experiment": "a", "passed": True}]) == {}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is not a results folder: no summary.json"),
    ],
)
def test_bad_folders_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    good = _results(tmp_path / "good", [(1, 1, 20.0, 1.0)])
    (tmp_path / "empty").mkdir()
    code = main(["compare", str(make(tmp_path / "empty")), str(good)])
    out = capsys.readouterr().out
    assert code == 2 and message in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fail-on-regression"], "--fail-on-regression needs --baseline"),
        (["--alpha", "2"], "--alpha must be between 0 and 1, got 2.0"),
        (["--repeat", "0"], "--repeat must be between 1 and 100, got 0"),
    ],
)
def test_suite_run_refuses_bad_comparison_options_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    code = main(["suite", "run", "--results-dir", str(tmp_path / "results"), *options])
    out = capsys.readouterr().out
    assert code == 2 and message in out and "Traceback" not in out
    assert not (tmp_path / "results").exists()


def test_compare_output_that_cannot_be_written_is_one_line(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "cmp.json"
    code = main(["compare", str(folders["baseline"]), str(folders["noise"]), "--json", str(target)])
    out = capsys.readouterr().out
    assert code == 2 and f"cannot write {target}" in out and "Traceback" not in out


def test_suite_run_refuses_to_judge_too_few_runs_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = _outage_runs(tmp_path / "single", [2])
    results = tmp_path / "results"
    for options, message in [
        ([], "--fail-on-regression needs --repeat 2 or more"),
        (["--repeat", "3"], f"{single} has too few of: worker-delete (1)"),
    ]:
        code = main(["suite", "run", "--results-dir", str(results), "--baseline", str(single),
                     "--fail-on-regression", *options])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 2 and message in out and "Traceback" not in out
    assert not results.exists()


# --- recoveries that timed out ------------------------------------------------------------

PODS = "ray.io/node-type=worker"


def _chaoslib_exception(error: Exception) -> list[str]:
    """A run entry's ``exception`` for an activity that raised ``error``, made
    the way chaoslib makes it: its Python provider re-raises the error as
    ActivityFailed(format_exception_only), and its activity runner stores
    format_exception of that (chaoslib.provider.python, chaoslib.activity)."""
    try:
        try:
            raise error
        except Exception as x:
            raise ActivityFailed(traceback.format_exception_only(type(x), x)[0].strip()) from x
    except ActivityFailed as failed:
        return traceback.format_exception(type(failed), failed, None)


def _recovery_entry(
    name: str, func: str, arguments: dict[str, Any], blocks: list[Any] | None, error: str = ""
) -> dict[str, Any]:
    """A recovery probe's run entry: it recovered (``blocks``, the probe's
    ``recoveries``), or it raised RecoveryTimeout with ``error``."""
    module = {"wait_for_ready_pods": "chaosray.k8s.probes"}.get(func, "chaosray.redis.probes")
    entry: dict[str, Any] = {
        "activity": {"type": "probe", "name": name,
                     "provider": {"type": "python", "module": module, "func": func,
                                  "arguments": arguments}},
        "start": T0, "end": T0 + 30.0, "duration": 30.0,
    }  # fmt: skip
    if blocks is None:
        return {**entry, "status": "failed", "output": None,
                "exception": _chaoslib_exception(RecoveryTimeout(error))}  # fmt: skip
    return {**entry, "status": "succeeded", "output": {RECOVERIES_KEY: blocks}}


def _pods_ready(seconds: float | None, timeout: float = 300.0) -> dict[str, Any]:
    """wait_for_ready_pods' entry: recovered in ``seconds`` (its two figures,
    as the probe gives them), or None: timed out at ``timeout``."""
    arguments = {"label_selector": PODS, "count": 3, "namespace": "ray-serve", "timeout": timeout}
    if seconds is None:
        error = (
            f"only 2 of 3 pods matching {PODS!r} in 'ray-serve' were Ready after {timeout:g}s; "
            "not Ready: w-3 (Pending, not scheduled: Unschedulable: 0/3 nodes are available)"
        )
        return _recovery_entry("replacement-ready", "wait_for_ready_pods", arguments, None, error)
    when = {"since": "2026-01-01T00:00:00+00:00", "since_source": "delete of pod w-1",
            "recovered_at": "2026-01-01T00:00:20+00:00"}  # fmt: skip
    blocks = [recovery("recovery_s", seconds, when),
              recovery("observed_recovery_s", seconds + 0.4, when, primary=False)]  # fmt: skip
    return _recovery_entry("replacement-ready", "wait_for_ready_pods", arguments, blocks)


def _redis_rejoin(seconds: float | None) -> dict[str, Any]:
    """wait_for_redis_rejoin's entry: recovered (Ready in ``seconds``,
    replicating 3 s later) or None: replication not whole within 120 s, which
    bounds the rejoin, not the pods' recovery_s: the timeout is unknown."""
    arguments = {"label_selector": "app=redis", "count": 3, "timeout": 120}
    if seconds is None:
        error = "Redis did not rejoin within 120s: redis-1: master_link_status down"
        return _recovery_entry("redis-rejoins", "wait_for_redis_rejoin", arguments, None, error)
    blocks = [recovery("recovery_s", seconds, {}),
              recovery("rejoin_s", seconds + 3.0, {}, primary=False)]  # fmt: skip
    return _recovery_entry("redis-rejoins", "wait_for_redis_rejoin", arguments, blocks)


def _timeout_results(folder: Path, entries: list[dict[str, Any]]) -> Path:
    """A results folder of worker-delete runs that lose the same few requests
    (the same draws on both sides: nothing but the recoveries differs), one
    run per recovery probe entry."""
    folder.mkdir(parents=True)
    summaries = []
    for index, entry in enumerate(entries, start=1):
        samples = _samples(index, 3000, 4 + index, 20.0)
        journal = _journal(samples, 0.0)
        journal["run"][1] = entry
        stem = f"worker-delete.r{index}"
        (folder / f"{stem}.samples.jsonl").write_text(
            "".join(json.dumps(s) + "\n" for s in samples)
        )
        summary = summarize_experiment(journal, samples, name="worker-delete")
        summary.update(repeat=index, files={"samples": f"{stem}.samples.jsonl"})
        summaries.append(summary)
    suite = summarize_suite(summaries, "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00")
    (folder / "summary.json").write_text(render_json(suite))
    return folder


RECOVERY = "recovery replacement-ready: recovery_s"
OBSERVED = "recovery replacement-ready: observed_recovery_s"


def test_every_current_run_timed_out_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The baseline recovered in about 20 s in every run; every current run
    waited 300 s and gave up. Dropping the runs that did not recover (what
    compare did) leaves nothing to compare and passes; counted at their
    timeout they are the clearest regression there is."""
    before = _timeout_results(tmp_path / "a", [_pods_ready(s) for s in (19.0, 20.0, 22.0)])
    after = _timeout_results(tmp_path / "b", [_pods_ready(None) for _ in range(3)])
    summary = json.loads((after / "summary.json").read_text())
    timed_out = summary["experiments"][0]["recovery"]
    assert [(f["metric"], f["seconds"], f["status"]) for f in timed_out] == [
        ("recovery_s", None, "failed")
    ]  # what the product writes for a recovery that timed out: no seconds
    out, junit = tmp_path / "cmp.json", tmp_path / "cmp.xml"
    code = main(["compare", str(before), str(after), "--fail-on-regression",
                 "--json", str(out), "--junit", str(junit)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1 and "REGRESSED" in printed and "REGRESSION" in printed
    comparison = json.loads(out.read_text())
    line = next(line for line in comparison_lines(comparison) if line[1] == RECOVERY)
    assert line[2:] == ["3:3", "20.00 s", ">= 300 s (timed out)", ">= +280.00 s",
                        "none: timed out", "-", "REGRESSION"]  # fmt: skip
    assert comparison["regressed"] is True
    assert comparison["regressions"] == [f"worker-delete: {OBSERVED}", f"worker-delete: {RECOVERY}"]
    assert comparison["too_few_runs"] == []
    (row,) = comparison["rows"]
    figure = row["figures"][RECOVERY]
    assert figure["baseline_values"] == [19.0, 20.0, 22.0] and figure["baseline_timed_out"] == []
    assert figure["current_values"] == [300.0] * 3 and figure["current_timed_out"] == [300.0] * 3
    assert figure["current"] == 300.0 and figure["change"] == 280.0  # lower bounds
    assert figure["timeout_rule"] is True and figure["test"] is None
    assert figure["worse"] is True and figure["separated"] == "worse"
    # The probe's other figure, which the runs that timed out never gave, is
    # a row too: the same wait, at least as long.
    observed = row["figures"][OBSERVED]
    assert observed["current_timed_out"] == [300.0] * 3 and observed["worse"] is True
    for name in ("failed_requests", "p99_ms", "outage_time_s"):
        assert row["figures"][name]["worse"] is False  # the same requests on both sides
    (failure,) = ET.parse(junit).getroot().findall(".//failure")
    assert RECOVERY in failure.attrib["message"]
    # The other way round, recovering where the baseline timed out is better.
    assert main(["compare", str(after), str(before), "--fail-on-regression"]) == 0
    assert "better" in capsys.readouterr().out


def test_only_the_runs_that_timed_out_show_this_regression(tmp_path: Path) -> None:
    """In the case above nothing but the recovery differs: a compare that
    drops the runs that did not recover (the old ``seconds`` filter) finds
    no regression there, and fails this test and the one above."""
    before = _timeout_results(tmp_path / "a", [_pods_ready(s) for s in (19.0, 20.0, 22.0)])
    after = _timeout_results(tmp_path / "b", [_pods_ready(None) for _ in range(3)])
    comparison = compare_suites(*_suites(before, after))
    (row,) = comparison["rows"]
    assert RECOVERY in row["figures"] and RECOVERY in row["regressions"]
    assert comparison["regressed"] is True
    dropped = {k: v for k, v in row["figures"].items() if not k.startswith("recovery ")}
    assert not any(f["worse"] for f in dropped.values())  # nothing else would flag it


def test_timeouts_on_both_sides_are_not_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _timeout_results(tmp_path / "a", [_pods_ready(None) for _ in range(3)])
    after = _timeout_results(tmp_path / "b", [_pods_ready(None) for _ in range(3)])
    out = tmp_path / "cmp.json"
    code = main(["compare", str(before), str(after), "--fail-on-regression", "--json", str(out)])
    assert code == 0 and "no regression" in capsys.readouterr().out
    comparison = json.loads(out.read_text())
    line = next(line for line in comparison_lines(comparison) if line[1] == RECOVERY)
    assert line[2:] == ["3:3", ">= 300 s (timed out)", ">= 300 s (timed out)", "-",
                        "timed out both sides", "-", "not tested"]  # fmt: skip
    (row,) = comparison["rows"]
    figure = row["figures"][RECOVERY]
    assert figure["baseline_timed_out"] == figure["current_timed_out"] == [300.0] * 3
    assert figure["test"] is None and figure["worse"] is False and figure["change"] is None
    assert figure["why_no_test"].startswith("runs timed out on both sides")
    assert row["regressions"] == [] and row["significant"] == []


def test_a_timeout_that_is_unknown_is_worse_when_the_baseline_recovered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis replication not whole within 120 s: the pods' recovery_s is not
    bounded by that (they may have been Ready early), so its timeout is
    unknown; the baseline recovered, so it is worse, never a silent pass."""
    before = _timeout_results(tmp_path / "a", [_redis_rejoin(s) for s in (11.0, 12.0, 14.0)])
    after = _timeout_results(tmp_path / "b", [_redis_rejoin(None) for _ in range(3)])
    out = tmp_path / "cmp.json"
    code = main(["compare", str(before), str(after), "--fail-on-regression", "--json", str(out)])
    assert code == 1 and "REGRESSED" in capsys.readouterr().out
    comparison = json.loads(out.read_text())
    cells = {line[1]: line[2:] for line in comparison_lines(comparison)}
    assert cells["recovery redis-rejoins: recovery_s"] == [
        "3:3", "12.00 s", "timed out (timeout unknown)", "-", "none: timed out", "-", "REGRESSION"
    ]  # fmt: skip
    assert comparison["regressions"] == [
        "worker-delete: recovery redis-rejoins: recovery_s",
        "worker-delete: recovery redis-rejoins: rejoin_s",
    ]
    figure = comparison["rows"][0]["figures"]["recovery redis-rejoins: recovery_s"]
    assert figure["current_values"] == [] and figure["current_timed_out"] == [None] * 3
    assert figure["current"] is None and figure["change"] is None
    # Unknown on both sides: nothing to say, and nothing flagged.
    again = compare_suites(*_suites(after, after))
    assert again["regressed"] is False and again["too_few_runs"] == []


def test_a_run_that_timed_out_among_recoveries_counts_as_a_lower_bound(tmp_path: Path) -> None:
    """One current run in three did not recover: it is tested at its timeout
    (a lower bound), and the other two overlap the baseline: no regression.
    A failed run that is not a timeout of recovery (interrupted) measured
    nothing."""
    before = _timeout_results(tmp_path / "a", [_pods_ready(s) for s in (19.0, 20.0, 22.0)])
    after = _timeout_results(tmp_path / "b", [_pods_ready(s) for s in (18.0, 21.0, None)])
    comparison = compare_suites(*_suites(before, after))
    (row,) = comparison["rows"]
    figure = row["figures"][RECOVERY]
    assert figure["current_values"] == [18.0, 21.0, 300.0] and figure["current_timed_out"] == [
        300.0
    ]
    assert figure["test"] == "welch_t" and figure["separated"] is None
    assert comparison["regressed"] is False
    line = next(line for line in comparison_lines(comparison) if line[1] == RECOVERY)
    assert line[2:6] == ["3:3", "20.00 s", ">= 21.00 s (1 of 3 timed out)", ">= +1.00 s"]
    assert "lower bounds" in line[6] and line[-1] == "no significant change"
    summary = json.loads((after / "summary.json").read_text())
    summary["experiments"][2]["recovery"][0]["status"] = "interrupted"
    (after / "summary.json").write_text(json.dumps(summary))
    (row,) = compare_suites(*_suites(before, after))["rows"]
    assert row["figures"][RECOVERY]["current_values"] == [18.0, 21.0]
    assert row["figures"][RECOVERY]["current_timed_out"] == []


@pytest.mark.parametrize(
    ("error", "timeout"),
    [
        ("only 2 of 3 pods matching 'a=b' in 'ns' were Ready after 300s; not Ready: w-3", 300.0),
        ("only 2 of 3 pods matching 'a=b' in 'ns' were Ready 90.5s after the delete of pod w-1; "
         "not Ready: w-3", 90.5),
        ("3 pods matching 'a=b' in 'ns' are Ready, but the last became Ready 312s after the "
         "delete of pod w-1 (2026-01-01T00:05:12+00:00), more than the 300s allowed", 300.0),
        ("Redis did not rejoin within 120s: redis-1: master_link_status down", None),
        ("workers did not reconnect within 60s of the new head being Ready; no HEALTHY Serve "
         "proxy under the new controller for: w-1", None),
        (None, None),
    ],
)  # fmt: skip
def test_the_timeout_of_a_recovery_is_read_from_the_pods_ready_wait(
    error: str | None, timeout: float | None
) -> None:
    from chaosray.report.compare import recovery_timeout

    assert recovery_timeout({"error": error}) == timeout
