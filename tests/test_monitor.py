"""The availability monitor against the scheduled-failure server: measured
downtime against the server's own ground truth."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from chaoslib.exceptions import ActivityFailed

from chaosray.load.probes import monitor_availability
from tests.rig.http_server import ScheduledServer
from tests.rig.procs import free_port

RATE = 10.0
INTERVAL = 1 / RATE


def test_downtime_matches_the_ground_truth(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    truth = scheduled_server.arm(
        [
            {"start": 1.0, "end": 1.5, "mode": "down"},
            {"start": 3.0, "end": 5.0, "mode": "reset"},
            {"start": 7.0, "end": 17.0, "mode": "error", "status": 500},
        ]
    )
    samples = tmp_path / "samples.jsonl"
    result = monitor_availability(
        f"{scheduled_server.url}/predict",
        duration=19.0,
        rate=RATE,
        payload={"inputs": [1, 2, 3]},
        samples_path=str(samples),
    )
    windows = result["downtime_windows"]
    assert len(windows) == 3, windows
    for measured, true in zip(windows, truth, strict=True):
        assert abs(measured["duration_s"] - true.duration) <= 2 * INTERVAL, (measured, true)
        assert abs(measured["start"] - true.start) <= 2 * INTERVAL
    assert result["total_downtime_s"] == pytest.approx(12.5, abs=6 * INTERVAL)
    assert result["longest_outage_s"] == pytest.approx(10.0, abs=2 * INTERVAL)
    assert result["still_down"] is False

    # Success rate exact: the server saw every request the monitor counted,
    # after the one reachability check sent before monitoring starts.
    reachability_check, *served = scheduled_server.served()
    assert reachability_check["status"] == 200
    assert result["requests"] == len(served)
    assert result["failed"] == sum(1 for r in served if r["status"] != 200)
    assert result["success_rate"] == (len(served) - result["failed"]) / len(served)
    assert 185 <= result["requests"] <= 191  # 19 s at 10/s, open loop

    # Percentiles against the exact value from the raw samples.
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == result["requests"]
    latencies = [r["latency"] for r in rows if r["ok"]]
    for pct in (50, 95, 99):
        exact = float(np.percentile(latencies, pct))
        assert result["latency_s"][f"p{pct}"] == pytest.approx(exact, rel=0.01)
    assert any("connection error" in e for e in result["errors"])
    assert "HTTP 500" in result["errors"] and "HTTP 503" in result["errors"]
    assert not [t for t in threading.enumerate() if t.name.startswith("chaosray-monitor")]


def test_monitor_sustains_a_high_rate(scheduled_server: ScheduledServer) -> None:
    result = monitor_availability(f"{scheduled_server.url}/predict", duration=3.0, rate=100.0)
    assert result["requests"] == 300
    assert result["success_rate"] == 1.0
    assert len(scheduled_server.served()) >= 300


def test_unreachable_endpoint_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/predict"
    with pytest.raises(
        ActivityFailed, match=r"does not answer before monitoring starts.*connection"
    ):
        monitor_availability(url, duration=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "not a url"}, "not an http"),
        ({"rate": 0}, "rate must be"),
        ({"rate": 5000}, "rate must be"),
        ({"duration": -1}, "duration must be"),
        ({"timeout": 0}, "timeout must be"),
        ({"method": "DELETE"}, "method"),
        ({"expect_status": [42]}, "expect_status"),
        ({"payload": "{not json"}, "does not parse"),
        ({"samples_path": "/nonexistent-dir/x.jsonl"}, "does not exist"),
    ],
)
def test_bad_input_is_refused_before_sending(
    scheduled_server: ScheduledServer, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"url": f"{scheduled_server.url}/predict", "duration": 1.0}
    args.update(kwargs)
    with pytest.raises(ActivityFailed, match=message):
        monitor_availability(**args)  # type: ignore[arg-type]
    assert scheduled_server.served() == []
