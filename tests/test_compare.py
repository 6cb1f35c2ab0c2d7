"""Comparison between runs: `chaosray compare` on saved results folders, one
pair with a real regression (many more failed requests, slower p99) and
one with noise only (the same service measured twice). The folders are
written the way the suite writes them: summaries built from journals by
chaosray.report, and the monitor's per-request samples files."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from chaosray.cli import main
from chaosray.report import render_json, summarize_experiment, summarize_suite
from chaosray.report.compare import compare_suites, values_change
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
    return {
        "baseline": _results(tmp_path / "a", [(1, 6, 20.0, 95.0)]),
        # The same service again: other random draws, 8 failures instead of 6.
        "noise": _results(tmp_path / "b", [(2, 8, 20.0, 97.0)]),
        # A regression: 90 failed requests and a 60 % slower tail.
        "regressed": _results(tmp_path / "c", [(3, 90, 32.0, 140.0)]),
    }


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
    failed = row["figures"]["failed_requests"]
    assert (failed["baseline"]["failed"], failed["current"]["failed"]) == (6, 8)
    assert failed["test"] == "fisher_exact" and failed["p_value"] > 0.5
    p99 = row["figures"]["p99_ms"]
    assert p99["test"] == "bootstrap" and p99["interval"][0] < 0 < p99["interval"][1]
    assert comparison["regressed"] is False and row["regressions"] == []
    assert comparison["not_measured"] == []
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
    assert row["regressions"] == ["failed_requests", "p99_ms"]
    assert row["figures"]["failed_requests"]["p_value"] < 1e-6
    assert row["figures"]["p99_ms"]["interval"][0] > 0
    # One run a side: recovery and outage times change, untested.
    recovery = row["figures"]["recovery replacement-ready: recovery_s"]
    assert recovery["change"] == 45.0 and recovery["test"] is None
    printed = capsys.readouterr().out
    assert "REGRESSION" in printed and "REGRESSED" in printed


def test_repeats_are_pooled_and_tested(tmp_path: Path) -> None:
    before = _results(tmp_path / "a", [(10 + i, 5, 20.0, 90.0 + i) for i in range(4)])
    after = _results(tmp_path / "b", [(20 + i, 5, 20.0, 130.0 + i) for i in range(4)])
    base_suite = json.loads((before / "summary.json").read_text())
    assert base_suite["repeats"]["worker-delete"]["runs"] == 4
    recovery = base_suite["repeats"]["worker-delete"]["figures"]["key_recovery_s"]
    assert (recovery["median"], recovery["min"], recovery["max"]) == (91.5, 90.0, 93.0)
    code = main(["compare", str(before), str(after), "--fail-on-regression"])
    assert code == 1  # four runs a side, every one slower: Mann-Whitney p = 0.029
    comparison = compare_suites(base_suite, json.loads((after / "summary.json").read_text()))
    (row,) = comparison["rows"]
    assert row["runs"] == {"baseline": 4, "current": 4}
    failed = row["figures"]["failed_requests"]
    assert (failed["baseline"]["failed"], failed["baseline"]["requests"]) == (20, 12000)
    recovery_change = row["figures"]["recovery replacement-ready: recovery_s"]
    assert recovery_change["test"] == "mann_whitney_u"
    assert recovery_change["p_value"] == pytest.approx(0.02857, abs=1e-4)
    assert row["regressions"] == ["recovery replacement-ready: recovery_s"]


def test_values_change_needs_three_runs_a_side() -> None:
    assert values_change([1.0, 2.0], [9.0, 9.5], 0.05)["test"] is None
    assert values_change([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], 0.05)["significant"] is False


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
