"""The output contract: a probe nobody has heard of feeds the verdict, the
report's table and its plot by returning an ``availability`` block, with no
edit anywhere in chaosray.

The probe is a module written into the test's directory; ``chaos run`` (the
real CLI) runs it with the real verdict control."""

from __future__ import annotations

import os
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from chaosray import report
from chaosray.contract import blocks_of, legacy_blocks
from chaosray.judge import criteria, judge
from tests.chaos_cli import run_experiment

T0 = 1_800_000_000.0
REPO = Path(__file__).resolve().parents[1]

# 100 requests a second for 10 s; 2..4 s all failed: 300 of 1000 (70 %).
PROBE = textwrap.dedent(
    """
    import time

    def error_ratio(name: str = "x") -> dict:
        now = time.time()
        timeline = [
            {"second": int(now) + s, "ok": 0 if 2 <= s < 5 else 100,
             "failed": 100 if 2 <= s < 5 else 0}
            for s in range(10)
        ]
        window = {"start": now + 2, "end": now + 5, "duration_s": 3.0,
                  "failed_requests": 300, "open": False}
        return {
            "series": name,
            "availability": {
                "requests": 1000, "failed": 300, "success_rate": 0.7,
                "latency_s": {"p50": 0.01, "p95": 0.02, "p99": 0.05, "max": 0.08},
                "downtime_windows": [window], "total_downtime_s": 3.0,
                "longest_outage_s": 3.0, "outage_windows": [window], "outage_time_s": 3.0,
                "failure_equivalent_downtime_s": 3.0, "longest_outage_window_s": 3.0,
                "still_down": False, "timeline": timeline,
            },
        }
    """
)


def _experiment(min_success_rate: float) -> dict[str, Any]:
    return {
        "title": "A throwaway probe",
        "description": "An error-ratio probe chaosray does not know",
        "method": [
            {
                "type": "probe",
                "name": "error-ratio",
                "provider": {
                    "type": "python",
                    "module": "throwaway_probe",
                    "func": "error_ratio",
                    "arguments": {"name": "prometheus"},
                },
            }
        ],
        "controls": [
            {
                "name": "verdict",
                "provider": {
                    "type": "python",
                    "module": "chaosray.verdict",
                    "arguments": {"min_success_rate": min_success_rate},
                },
            }
        ],
    }


def test_a_throwaway_probe_reaches_the_verdict_the_table_and_the_plot(tmp_path: Path) -> None:
    (tmp_path / "throwaway_probe.py").write_text(PROBE)
    here = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), str(REPO), here) if p)}

    failing = run_experiment(_experiment(0.95), tmp_path, env=env)
    assert failing.returncode == 1, failing.log
    verdict = failing.journal["chaosray"]["verdict"]
    assert verdict["passed"] is False
    assert verdict["reasons"] == ["error-ratio: success rate 70.0000% below 95.00%"]

    summary = report.summarize_experiment(failing.journal, name="throwaway")
    assert summary["availability"]["source"] == "monitor"
    assert summary["availability"]["activity"] == "error-ratio"
    assert summary["availability"]["failed"] == 300
    assert summary["availability"]["latency_ms"]["p99"] == 50.0
    assert [w["duration_s"] for w in summary["availability"]["downtime_windows"]] == [3.0]
    assert summary["verdict"]["source"] == "judge" and not summary["verdict"]["passed"]

    suite = report.summarize_suite([summary], "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    (row,) = suite["comparison"]["rows"]
    assert row["success_rate"] == 0.7 and row["verdict"] == "failed"
    console = report.render_console(suite)
    assert "70.00" in console and "throwaway" in console

    page = report.render_html(suite)
    charts = [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, flags=re.S)]
    ns = "{http://www.w3.org/2000/svg}"
    titled = [
        el.findtext(f"{ns}title") or ""
        for svg in charts
        for el in svg.iter(f"{ns}rect")
        if el.find(f"{ns}title") is not None
    ]
    # Three seconds of 100 failures each, from the probe's own timeline.
    assert sum(t.endswith(": 100 failed") for t in titled) == 3, titled

    passing = run_experiment(_experiment(0.5), tmp_path, env=env)
    assert passing.returncode == 0, passing.log
    verdict = passing.journal["chaosray"]["verdict"]
    assert (verdict["passed"], verdict["reasons"]) == (True, [])
    assert [(c["id"], c["state"]) for c in verdict["criteria"]] == [
        ("success-rate", "held"),
        ("up-at-end", "held"),
    ]


def test_a_block_of_the_wrong_shape_is_left_out() -> None:
    output = {
        "availability": {"requests": 10},  # no failed, no success rate
        "recoveries": [{"metric": "x", "seconds": "soon"}, {"metric": "y", "seconds": 1.5}],
        "disruptions": [{"kind": "delete"}, {"kind": "delete", "at": T0, "pod": "p"}],
    }
    blocks = blocks_of(output)
    assert blocks["availability"] is None
    assert [r["metric"] for r in blocks["recoveries"]] == ["y"]
    assert [d.get("pod") for d in blocks["disruptions"]] == ["p"]


def test_the_judge_applies_the_criteria_to_every_availability_block_of_the_method() -> None:
    def entry(name: str, rate: float, still_down: bool = False) -> dict[str, Any]:
        block = {"requests": 100, "failed": round(100 * (1 - rate)), "success_rate": rate,
                 "latency_s": {}, "downtime_windows": [], "total_downtime_s": 40.0 * (1 - rate),
                 "longest_outage_s": 1.0, "still_down": still_down}  # fmt: skip
        return {"activity": {"type": "probe", "name": name, "provider": {"type": "python",
                "module": "m", "func": "f"}}, "status": "succeeded", "output":
                {"availability": block}, "start": "2026-01-01T00:00:00", "end": None}  # fmt: skip

    journal = {"status": "completed", "run": [entry("a", 0.99), entry("b", 0.9, still_down=True)]}
    verdict = judge(journal, criteria(min_success_rate=0.95, max_downtime_s=2.0))
    assert [r["message"] for r in verdict["reasons"]] == [
        "b: success rate 90.0000% below 95.00%",
        "b: total downtime 4.00s above 2s",
        "b: the service was still down when monitoring ended",
    ]
    # With no criteria, only "still down at the end" fails it.
    lenient = judge(journal, criteria())
    assert [r["message"] for r in lenient["reasons"]] == [
        "b: the service was still down when monitoring ended"
    ]
    assert verdict["evidence"] == []  # criteria aside, the journal shows no failure


def test_old_journals_go_through_the_one_fallback() -> None:
    """An output from before the contract (no blocks) still gives its figures."""
    old = {"pod": "w-0", "node": "n", "deleted_at": "2026-01-01T00:00:01+00:00", "dry_run": False}
    (deletion,) = legacy_blocks("delete_pod", old, None)["disruptions"]
    assert (deletion["kind"], deletion["pod"], deletion["status"]) == ("delete", "w-0", "done")
    figures = legacy_blocks("ray_head_recovery", {"head_ready_s": 40.0, "head": {}}, None)
    assert [(r["metric"], r["seconds"], r["primary"]) for r in figures["recoveries"]] == [
        ("head_ready_s", 40.0, True)
    ]
    assert legacy_blocks("some_new_probe", {"requests": 1}, None)["availability"] is None
