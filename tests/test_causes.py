"""chaosray.causes: each outage window with the events that preceded it, and
the hint rules. Windows come from the real monitor against the
scheduled-failure server (the server's own schedule is the ground truth);
the events are a synthetic timeline placed around them, so every horizon,
lag and no-cause case has an exact expected answer. The rules that read the
requests' status codes or chaosray's own disruptions are also run on a
journal the product's code writes (the monitor's figures from real
``RequestStats``, the real Redis delete action's output) through the
report's own path (``summarize_experiment``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chaosray import contract
from chaosray.causes import NO_EVENT, RULES, attribute, attribute_window, disruption_events
from chaosray.load.probes import monitor_availability
from chaosray.metrics import Request, RequestStats
from chaosray.report.experiment import summarize_experiment
from tests.rig.http_server import ScheduledServer

T = 1_700_000_000.0


def _event(t: float, group: str, pod: str, event: str, **detail: Any) -> dict[str, Any]:
    return {"t": T + t, "group": group, "pod": pod, "event": event, "node": None,
            **({"detail": detail} if detail else {})}  # fmt: skip


def _window(start: float, end: float, **failures: int) -> dict[str, Any]:
    window: dict[str, Any] = {"start": T + start, "end": T + end}
    if failures:
        window["failures_by_status"] = {k.removeprefix("s"): v for k, v in failures.items()}
    return window


def _rules(result: dict[str, Any]) -> list[str]:
    return [h["rule"] for h in result["hints"]]


def _unknown(result: dict[str, Any]) -> list[str]:
    return [u["rule"] for u in result["unknown"]]


def _evidence(hint: dict[str, Any]) -> list[str]:
    return [e["text"] for e in hint["evidence"]]


def _hint(result: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(h for h in result["hints"] if h["rule"] == rule)


# --- a journal as the product writes it --------------------------------------------


def _iso(offset: float, base: float = T) -> str:
    return datetime.fromtimestamp(base + offset, UTC).isoformat()


def _stream(
    fail_from: float, fail_to: float, status: int | None, error: str, base: float = T
) -> dict[str, Any]:
    """The monitor's output (real RequestStats and contract blocks): a
    request every 0.1 s from -30 s to +30 s (around ``base``), failing in
    [fail_from, fail_to) with ``status`` / ``error`` as
    chaosray.inference.send records them."""
    stats = RequestStats()
    for i in range(600):
        sent = base - 30.0 + i * 0.1
        if fail_from <= sent - base < fail_to:
            stats.add(Request(sent, False, None, status, error))
        else:
            stats.add(Request(sent, True, 0.01, 200, None))
    summary = stats.summary()
    summary[contract.AVAILABILITY_KEY] = contract.availability_of(summary)
    return summary


def _entry(module: str, func: str, output: Any, start: float, base: float = T) -> dict[str, Any]:
    return {
        "activity": {"type": "action", "name": func.replace("_", "-"),
                     "provider": {"type": "python", "module": module, "func": func}},
        "output": output, "status": "succeeded",
        "start": _iso(start, base), "end": _iso(start + 1.0, base), "duration": 1.0,
    }  # fmt: skip


def _summarized(
    run: list[dict[str, Any]], events: list[dict[str, Any]], watched: list[str], base: float = T
) -> list[dict[str, Any]]:
    """The attributed windows of the report's own path for a journal with
    these method entries and this timeline."""
    journal = {
        "experiment": {"title": "product path"},
        "start": _iso(-31.0, base), "end": _iso(31.0, base), "duration": 62.0,
        "status": "completed",
        "steady_states": {"before": None, "after": None, "during": []},
        "run": run, "rollbacks": [],
        "chaosray": {"timeline": {"events": events, "watched": watched, "unwatched": {}}},
    }  # fmt: skip
    windows: list[dict[str, Any]] = summarize_experiment(journal)["outage_causes"]["windows"]
    return windows


def _redis_delete_output(role: str, at: float) -> Any:
    """What delete_redis_pod returns (its disruption block carries the role:
    tests/test_redis.py checks that on the real action against the test
    cluster and real Redis), built with the contract's own block builder."""
    block = contract.disruption(
        "delete", at=_iso(at), at_source="api", pod="redis-0", node="n-1",
        grace_period=None, role=role, primary_before="redis-0",
    )  # fmt: skip
    return {"pod": "redis-0", "role": role, contract.DISRUPTIONS_KEY: [block]}


def test_the_nearest_preceding_event_within_the_horizon_is_named_not_called_a_cause() -> None:
    events = [
        _event(-40.0, "workers", "w-0", "not_ready"),  # outside a 30 s horizon
        _event(-3.0, "workers", "w-1", "deletion_requested"),
        _event(-0.4, "workers", "w-1", "not_ready"),
        _event(1.7, "endpoints", "w-1", "removed"),  # inside the window
    ]
    result = attribute_window(_window(0.0, 5.0), events, horizon_s=30.0)
    assert result["nearest_event"] == (
        "began 0.4 s after pod w-1 not_ready; endpoint of w-1 removed 2.1 s later"
    )
    # A cause is only what a rule saw: here the deletion and the endpoint's
    # removal after the window began, named with their offsets.
    assert result["cause"] == (
        "terminating-pod-still-an-endpoint: pod w-1 deletion_requested at -3.0 s; "
        "endpoint of w-1 removed at +1.7 s, after the window began"
    )
    # Without the endpoint's removal no rule fires: the nearest event stays
    # what it is and there is no cause.
    bare = attribute_window(_window(0.0, 5.0), events[:3], horizon_s=30.0)
    assert bare["nearest_event"] == "began 0.4 s after pod w-1 not_ready"
    assert bare["cause"] is None and bare["hints"] == []
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
    assert result["nearest_event"] == f"{NO_EVENT}; node n-1 cordoned 2.0 s into it"
    alone = attribute_window(_window(0.0, 5.0), [], horizon_s=30.0)
    assert alone["nearest_event"] == NO_EVENT and alone["hints"] == []
    assert alone["cause"] is None and alone["unknown"] == []


def test_windows_from_the_real_monitor_are_attributed_exactly(
    scheduled_server: ScheduledServer,
) -> None:
    truth = scheduled_server.arm(
        [
            {"start": 1.0, "end": 2.0, "mode": "down", "status": 502},
            {"start": 4.0, "end": 6.0, "mode": "reset"},
        ]
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
    assert two["nearest_event"].startswith("began 1.")
    assert "after endpoint of w-2 removed" in two["nearest_event"]
    # The real monitor recorded what the failed requests got, window by window.
    assert set(one["failures_by_status"]) == {"502"}, one
    assert set(two["failures_by_status"]) == {"connection error"}, two
    assert sum(one["failures_by_status"].values()) == windows[0]["failed_requests"]
    # With a 1 s horizon nothing precedes either window.
    assert [w["nearest_event"].split(";")[0] for w in attribute(windows, events, 1.0)] == [
        NO_EVENT,
        NO_EVENT,
    ]


def test_every_rule_is_in_the_table_once() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) == 4
    assert all(r.reference.startswith("https://") and r.text for r in RULES)


def test_head_restart_hint_needs_a_replaced_head_and_gateway_errors() -> None:
    rule = "head-restart-5xx"
    replaced = [
        _event(-40.0, "head", "h-0", "deletion_requested"),
        _event(-30.0, "head", "h-1", "created"),
        _event(-10.0, "head", "h-1", "ready"),
    ]
    fired = attribute_window(_window(0.0, 2.0, s502=12, timeout=3), replaced)
    hint = _hint(fired, rule)
    assert _evidence(hint) == [
        "pod h-0 deletion_requested", "pod h-1 created", "pod h-1 ready",
    ]  # fmt: skip
    assert hint["statuses"] == {"502": 12, "timeout": 3}
    assert "new head pod h-1" in hint["seen"] and "502 x12" in hint["seen"]
    assert fired["cause"] is not None and fired["cause"].startswith(f"{rule}: ")
    # Timeouts only: the requests did not get the 502s this pattern is about.
    timeouts = attribute_window(_window(0.0, 2.0, timeout=40), replaced)
    assert rule not in _rules(timeouts) and rule not in _unknown(timeouts)
    assert timeouts["cause"] is None
    # No status codes recorded (k6's metric): the replacement was seen, the
    # 502s were not: unknown, not a hint.
    blind = attribute_window(_window(0.0, 2.0), replaced)
    assert rule not in _rules(blind) and rule in _unknown(blind)
    unknown = attribute_window(_window(0.0, 2.0, unknown=40), replaced)
    assert rule in _unknown(unknown)
    # The same head pod Ready again after a readiness flap is no replacement.
    flap = [_event(-40.0, "head", "h-0", "not_ready"), _event(-10.0, "head", "h-0", "ready")]
    assert rule not in _rules(attribute_window(_window(0.0, 2.0, s502=12), flap))
    # A head Ready long before the failures is not "right after" it.
    assert rule not in _rules(attribute_window(_window(100.0, 102.0, s502=12), replaced))
    # Same name, new UID: the timeline reports gone then created.
    renamed = [
        _event(-40.0, "head", "h-0", "deletion_requested"),
        _event(-35.0, "head", "h-0", "gone"),
        _event(-35.0, "head", "h-0", "created"),
        _event(-5.0, "head", "h-0", "ready"),
    ]
    assert rule in _rules(attribute_window(_window(0.0, 2.0, s503=4), renamed))


def test_a_timeouts_window_after_a_ray_node_turned_alive_gets_no_5xx_hint() -> None:
    """The lab's node-drain window: timeouts, a Ray node ALIVE 3 s before,
    a head readiness flap earlier; no head pod was replaced."""
    events = [
        _event(-50.0, "head", "h-0", "not_ready"),
        _event(-45.0, "head", "h-0", "ready"),
        _event(-20.0, "nodes", "n-2", "cordoned"),
        _event(-3.0, "ray", "node 1a2b3c4d (10.0.1.5)", "ALIVE"),
    ]
    result = attribute_window(_window(0.0, 8.0, timeout=40), events)
    assert "head-restart-5xx" not in _rules(result) + _unknown(result)
    assert result["nearest_event"].startswith("began 3.0 s after Ray node 1a2b3c4d")
    assert result["cause"] is None
    # Even with 502s, a Ray node ALIVE is no head replacement.
    gateway = attribute_window(_window(0.0, 8.0, s502=40), events)
    assert "head-restart-5xx" not in _rules(gateway)


def test_a_502_window_after_a_real_head_replacement_through_the_report() -> None:
    """The monitor's own figures (real RequestStats with the statuses
    chaosray.inference.send records) and the timeline's head replacement,
    through the report's path: the hint fires on 502s, not on timeouts."""
    events = [
        {"t": T - 40.0, "group": "head", "pod": "h-0", "event": "deletion_requested"},
        {"t": T - 30.0, "group": "head", "pod": "h-1", "event": "created"},
        {"t": T - 5.0, "group": "head", "pod": "h-1", "event": "ready"},
    ]
    watched = ["endpoints", "head", "workers"]
    monitor = ("chaosray.load.probes", "monitor_availability")
    gateway = _stream(0.0, 3.0, 502, "HTTP 502")
    (window,) = _summarized([_entry(*monitor, gateway, -30.0)], events, watched)
    assert window["failures_by_status"] == {"502": 30}
    assert "head-restart-5xx" in _rules(window)
    timeouts = _stream(0.0, 3.0, None, "timeout after 2s")
    (window,) = _summarized([_entry(*monitor, timeouts, -30.0)], events, watched)
    assert window["failures_by_status"] == {"timeout": 30}
    assert "head-restart-5xx" not in _rules(window) and window["cause"] is None


def test_zombie_worker_rule_says_only_what_was_seen() -> None:
    rule = "zombie-worker-after-head-restart"
    events = [
        _event(-60.0, "head", "h-0", "deletion_requested"),
        _event(-5.0, "workers", "w-2", "not_ready"),
    ]
    result = attribute_window(_window(0, 3), events)
    hint = _hint(result, rule)
    assert _evidence(hint) == ["pod h-0 deletion_requested", "pod w-2 not_ready"]
    assert "not seen Ready again by the window's end (8.0 s later)" in hint["seen"]
    assert "never" not in hint["text"] and "never" not in hint["seen"]
    recovered = [*events, _event(1.0, "workers", "w-2", "ready")]
    assert rule not in _rules(attribute_window(_window(0, 3), recovered))
    no_head = events[1:]
    assert rule not in _rules(attribute_window(_window(0, 3), no_head))


def test_gcs_stops_on_redis_primary_change_on_the_redis_delete_output() -> None:
    """The rule reads the role from delete_redis_pod's disruption block,
    through the report's path."""
    rule = "gcs-stops-on-redis-primary-change"
    output = _redis_delete_output("primary", at=-20.0)
    assert output["role"] == "primary"
    (block,) = output[contract.DISRUPTIONS_KEY]
    assert block["details"]["role"] == "primary" and block["pod"] == "redis-0"
    head_down = [{"t": T - 8.0, "group": "head", "pod": "h-0", "event": "not_ready"}]
    watched = ["head", "redis", "workers"]
    monitor = _entry("chaosray.load.probes", "monitor_availability",
                     _stream(0.0, 5.0, 503, "HTTP 503"), -30.0)  # fmt: skip
    redis = _entry("chaosray.redis.actions", "delete_redis_pod", output, -20.0)
    (window,) = _summarized([monitor, redis], head_down, watched)
    hint = _hint(window, rule)
    assert _evidence(hint) == ["delete of redis-0", "pod h-0 not_ready"]
    assert [round(e["at_s"], 1) for e in hint["evidence"]] == [-20.0, -8.0]
    # A replica's loss does not stop the GCS.
    replica = _redis_delete_output("replica", at=-20.0)
    assert replica[contract.DISRUPTIONS_KEY][0]["details"]["role"] == "replica"
    redis = _entry("chaosray.redis.actions", "delete_redis_pod", replica, -20.0)
    (window,) = _summarized([monitor, redis], head_down, watched)
    assert rule not in _rules(window)
    # The head NotReady 50 s after the primary's loss: not "within seconds".
    disruption = disruption_events(
        [{"at_epoch": T - 20.0, "kind": "delete", "pod": "redis-0", "node": None,
          "status": "done", "details": dict(block["details"])}]
    )  # fmt: skip
    late = _event(30.0, "head", "h-0", "not_ready")
    assert rule not in _rules(attribute_window(_window(31, 35), [*disruption, late]))


def test_terminating_pod_still_an_endpoint_rule() -> None:
    rule = "terminating-pod-still-an-endpoint"
    dying = [
        _event(-2.0, "endpoints", "w-1", "present"),
        _event(-1.0, "workers", "w-1", "deletion_requested"),
        _event(3.0, "endpoints", "w-1", "removed"),  # removed after the window began
    ]
    result = attribute_window(_window(0, 5), dying)
    assert _evidence(_hint(result, rule)) == [
        "pod w-1 deletion_requested", "endpoint of w-1 removed",
    ]  # fmt: skip
    removed_first = [*dying[:2], _event(-0.5, "endpoints", "w-1", "removed")]
    removed = attribute_window(_window(0, 5), removed_first)
    assert rule not in _rules(removed) and rule not in _unknown(removed)
    # Without the endpoints watched, nothing can be said about them.
    unwatched = [e for e in dying if e["group"] != "endpoints"]
    blind = attribute_window(_window(0, 5), unwatched)
    assert rule not in _rules(blind) and rule in _unknown(blind)
    assert "not watched" in blind["unknown"][0]["seen"]


def test_an_endpoint_removal_never_observed_is_unknown_not_proof() -> None:
    """Watched, but the watch saw no removal of the dying pod's endpoint
    (unchanged for longer than the rules look back): that proves nothing."""
    rule = "terminating-pod-still-an-endpoint"
    long_run = [
        _event(-900.0, "endpoints", "w-1", "present"),
        _event(-1.0, "workers", "w-1", "deletion_requested"),
    ]
    (late,) = attribute([_window(0, 5)], long_run, watched=["endpoints", "workers"])
    assert rule not in _rules(late)
    assert _unknown(late) == [rule]
    assert late["unknown"][0]["seen"].endswith("the watch saw no removal of its endpoint by "
                                               "the window's end")  # fmt: skip
    assert _evidence(late["unknown"][0]) == ["pod w-1 deletion_requested"]
    assert late["cause"] is None
