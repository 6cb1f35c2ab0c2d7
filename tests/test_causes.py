"""chaosray.causes: each outage window with the events that preceded it, and
the hint rules. Windows come from the real monitor against the
scheduled-failure server (the server's own schedule is the ground truth);
the events are a synthetic timeline placed around them, so every horizon,
lag and no-cause case has an exact expected answer."""

from __future__ import annotations

from typing import Any

import pytest

from chaosray.causes import NO_EVENT, RULES, attribute, attribute_window, disruption_events
from chaosray.load.probes import monitor_availability
from tests.rig.http_server import ScheduledServer

T = 1_700_000_000.0


def _event(t: float, group: str, pod: str, event: str, **detail: Any) -> dict[str, Any]:
    return {"t": T + t, "group": group, "pod": pod, "event": event, "node": None,
            **({"detail": detail} if detail else {})}  # fmt: skip


def _window(start: float, end: float) -> dict[str, Any]:
    return {"start": T + start, "end": T + end}


def _rules(result: dict[str, Any]) -> list[str]:
    return [h["rule"] for h in result["hints"]]


def test_the_nearest_preceding_event_within_the_horizon_is_the_cause() -> None:
    events = [
        _event(-40.0, "workers", "w-0", "not_ready"),  # outside a 30 s horizon
        _event(-3.0, "workers", "w-1", "deletion_requested"),
        _event(-0.4, "workers", "w-1", "not_ready"),
        _event(1.7, "endpoints", "w-1", "removed"),  # inside the window
    ]
    result = attribute_window(_window(0.0, 5.0), events, horizon_s=30.0)
    assert result["cause"] == (
        "began 0.4 s after pod w-1 not_ready; endpoint of w-1 removed 2.1 s later"
    )
    assert [(e["text"], e["lag_s"]) for e in result["preceding"]] == [
        ("pod w-1 not_ready", 0.4),
        ("pod w-1 deletion_requested", 3.0),
    ]
    assert [(e["text"], e["after_start_s"]) for e in result["inside"]] == [
        ("endpoint of w-1 removed", 1.7)
    ]
    # A longer horizon reaches the older event too, listed last (farthest).
    wider = attribute_window(_window(0.0, 5.0), events, horizon_s=60.0)
    assert [e["lag_s"] for e in wider["preceding"]] == [0.4, 3.0, 40.0]


def test_a_window_with_no_event_before_it_says_so() -> None:
    events = [_event(-31.0, "workers", "w-1", "not_ready"), _event(2.0, "nodes", "n-1", "cordoned")]
    result = attribute_window(_window(0.0, 5.0), events, horizon_s=30.0)
    assert result["preceding"] == []
    assert result["cause"] == f"{NO_EVENT}; node n-1 cordoned 2.0 s into it"
    alone = attribute_window(_window(0.0, 5.0), [], horizon_s=30.0)
    assert alone["cause"] == NO_EVENT and alone["hints"] == []


def test_windows_from_the_real_monitor_are_attributed_exactly(
    scheduled_server: ScheduledServer,
) -> None:
    truth = scheduled_server.arm(
        [{"start": 1.0, "end": 2.0, "mode": "down"}, {"start": 4.0, "end": 6.0, "mode": "reset"}]
    )
    measured = monitor_availability(
        f"{scheduled_server.url}/predict", duration=7.0, rate=20.0, payload={"x": 1}
    )
    windows = measured["outage_windows"]
    assert len(windows) == 2, windows
    first, second = truth
    # A pod event 1.5 s before each true outage, a node event 0.5 s into the
    # second, and one long before everything (beyond the 10 s horizon).
    events = [
        {"t": first.start - 1.5, "group": "workers", "pod": "w-1", "event": "not_ready"},
        {"t": second.start - 1.5, "group": "endpoints", "pod": "w-2", "event": "removed"},
        {"t": second.start + 0.5, "group": "nodes", "pod": "n-2", "event": "not_ready"},
        {"t": first.start - 60.0, "group": "head", "pod": "h-0", "event": "not_ready"},
    ]
    one, two = attribute(windows, events, horizon_s=10.0)
    # The measured start lags the true one by less than a request interval (50 ms).
    assert one["preceding"][0]["text"] == "pod w-1 not_ready"
    assert one["preceding"][0]["lag_s"] == pytest.approx(1.5, abs=0.1)
    assert [e["text"] for e in one["preceding"]] == ["pod w-1 not_ready"]
    assert two["preceding"][0]["text"] == "endpoint of w-2 removed"
    assert [e["text"] for e in two["inside"]] == ["node n-2 not_ready"]
    assert two["preceding"][0]["lag_s"] == pytest.approx(1.5, abs=0.1)
    assert two["cause"].startswith("began 1.") and "after endpoint of w-2 removed" in two["cause"]
    # With a 1 s horizon nothing precedes either window.
    assert [w["cause"].split(";")[0] for w in attribute(windows, events, horizon_s=1.0)] == [
        NO_EVENT,
        NO_EVENT,
    ]


def test_every_rule_is_in_the_table_once() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) == 4
    assert all(r.reference.startswith("https://") and r.text for r in RULES)


def test_head_restart_rule() -> None:
    events = [
        _event(-70.0, "head", "h-0", "deletion_requested"),
        _event(-10.0, "head", "h-1", "ready"),
    ]
    assert "head-restart-5xx" in _rules(attribute_window(_window(0.0, 2.0), events))
    # Without a head loss before it, a head becoming Ready is no restart.
    assert "head-restart-5xx" not in _rules(attribute_window(_window(0.0, 2.0), events[1:]))
    # Failures long after the restart are not "right after" it.
    assert "head-restart-5xx" not in _rules(attribute_window(_window(100.0, 102.0), events))


def test_zombie_worker_rule() -> None:
    events = [
        _event(-60.0, "head", "h-0", "deletion_requested"),
        _event(-5.0, "workers", "w-2", "not_ready"),
    ]
    assert "zombie-worker-after-head-restart" in _rules(attribute_window(_window(0, 3), events))
    recovered = [*events, _event(1.0, "workers", "w-2", "ready")]
    assert "zombie-worker-after-head-restart" not in _rules(
        attribute_window(_window(0, 3), recovered)
    )
    no_head = events[1:]
    assert "zombie-worker-after-head-restart" not in _rules(
        attribute_window(_window(0, 3), no_head)
    )


def test_gcs_stops_on_redis_primary_change_rule() -> None:
    disruption = disruption_events(
        [
            {
                "at_epoch": T - 20.0,
                "kind": "delete",
                "pod": "redis-0",
                "node": None,
                "status": "done",
                "details": {"role": "primary"},
            }
        ]
    )
    head_down = _event(-8.0, "head", "h-0", "not_ready")
    rule = "gcs-stops-on-redis-primary-change"
    assert rule in _rules(attribute_window(_window(0, 5), [*disruption, head_down]))
    replica = disruption_events(
        [
            {
                "at_epoch": T - 20.0,
                "kind": "delete",
                "pod": "redis-1",
                "node": None,
                "status": "done",
                "details": {"role": "replica"},
            }
        ]
    )
    assert rule not in _rules(attribute_window(_window(0, 5), [*replica, head_down]))
    late = _event(30.0, "head", "h-0", "not_ready")  # 50 s after the primary: not "within seconds"
    assert rule not in _rules(attribute_window(_window(31, 35), [*disruption, late]))


def test_terminating_pod_still_an_endpoint_rule() -> None:
    rule = "terminating-pod-still-an-endpoint"
    dying = [
        _event(-2.0, "endpoints", "w-1", "present"),
        _event(-1.0, "workers", "w-1", "deletion_requested"),
        _event(3.0, "endpoints", "w-1", "removed"),  # removed after the window began
    ]
    assert rule in _rules(attribute_window(_window(0, 5), dying))
    removed_first = [*dying[:2], _event(-0.5, "endpoints", "w-1", "removed")]
    assert rule not in _rules(attribute_window(_window(0, 5), removed_first))
    # Without the endpoints watched, nothing can be said about them.
    unwatched = [e for e in dying if e["group"] != "endpoints"]
    assert rule not in _rules(attribute_window(_window(0, 5), unwatched))
    # Watched but unchanged for longer than the rules look back: a pod that
    # was never removed from the endpoints still matches.
    long_run = [e for e in dying if e["event"] != "removed"]
    long_run[0] = _event(-900.0, "endpoints", "w-1", "present")
    (late,) = attribute([_window(0, 5)], long_run, watched=["endpoints", "workers"])
    assert rule in _rules(late)
