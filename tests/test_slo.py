"""chaosray.slo: error-budget figures against hand-computed values, and the
budget limit failing a scenario through the one judge."""

from __future__ import annotations

import pytest

from chaosray import slo
from chaosray.judge import criteria, judge

MONTH_BUDGET_S = 0.001 * 30 * 86_400  # 99.9 % over 30 days: 2,592 s


def test_defaults_and_period_budget() -> None:
    objective = slo.slo()
    assert objective == {"target": 0.999, "period_days": 30.0, "latency_p99_ms": None}
    assert slo.period_budget_s(objective) == pytest.approx(2592.0)
    assert slo.period_budget_s(slo.slo(0.99, 7)) == pytest.approx(0.01 * 7 * 86_400)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 1.0}, "slo_target is a fraction strictly between 0 and 1"),
        ({"target": "abc"}, "slo_target must be a number"),
        ({"period_days": 0}, "slo_period_days must be > 0"),
        ({"latency_p99_ms": -5}, "slo_latency_p99_ms must be > 0"),
        ({"target": float("nan")}, "slo_target must be a finite number"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slo.slo(**kwargs)


def test_budget_of_a_partial_outage() -> None:
    # 600 requests at 10/s, 30 failed: 3 s failure-equivalent downtime.
    budget = slo.budget(slo.slo(), requests=600, failed=30, failure_equivalent_downtime_s=3.0)
    assert budget["consumed_s"] == 3.0
    assert budget["consumed_requests"] == 30
    assert budget["share"] == pytest.approx(3.0 / 2592.0)
    assert budget["burn_rate"] == pytest.approx((30 / 600) / 0.001)  # 50x
    # During the disruption only: 200 requests of which the same 30 failed.
    during = slo.budget(
        slo.slo(), requests=600, failed=30, failure_equivalent_downtime_s=3.0,
        during_requests=200, during_bad=30, during_span_s=20.0,
    )  # fmt: skip
    assert during["burn_rate"] == pytest.approx(0.15 / 0.001)
    assert during["burn_rate_span_s"] == 20.0


def test_slow_requests_count_only_with_a_latency_objective() -> None:
    with_objective = slo.slo(latency_p99_ms=250)
    budget = slo.budget(
        with_objective, requests=600, failed=30, failure_equivalent_downtime_s=3.0,
        p99_ms=300.0, slow_requests=12,
    )  # fmt: skip
    # Each bad request costs one interval: 3 s / 30 = 0.1 s.
    assert budget["consumed_s"] == pytest.approx(3.0 + 12 * 0.1)
    assert budget["consumed_requests"] == 42
    assert budget["latency_objective_met"] is False
    plain = slo.budget(
        slo.slo(), requests=600, failed=30, failure_equivalent_downtime_s=3.0, slow_requests=12
    )
    assert plain["consumed_requests"] == 30 and plain["slow_requests"] is None
    assert plain["latency_objective_met"] is None


def test_suite_total_sums_the_scenarios() -> None:
    objective = slo.slo()
    one = slo.budget(objective, requests=100, failed=10, failure_equivalent_downtime_s=1.0)
    two = slo.budget(objective, requests=100, failed=0, failure_equivalent_downtime_s=0.0)
    none = slo.budget(objective, requests=0, failed=0, failure_equivalent_downtime_s=None)
    total = slo.total([one, two, none])
    assert total is not None
    assert total["consumed_s"] == 1.0 and total["consumed_requests"] == 10
    assert total["share"] == pytest.approx(1.0 / MONTH_BUDGET_S)
    assert total["scenarios"] == 2
    assert slo.total([none]) is None


def _journal_with(failed: int, downtime_s: float) -> dict[str, object]:
    block = {
        "requests": 1000, "failed": failed, "success_rate": 1 - failed / 1000,
        "latency_s": {"p99": 0.05}, "downtime_windows": [], "total_downtime_s": downtime_s,
        "longest_outage_s": downtime_s, "failure_equivalent_downtime_s": downtime_s,
        "still_down": False,
    }  # fmt: skip
    entry = {
        "activity": {"type": "probe", "name": "monitor",
                     "provider": {"type": "python", "module": "m", "func": "f"}},
        "status": "succeeded", "output": {"availability": block},
    }  # fmt: skip
    return {"status": "completed", "run": [entry], "steady_states": {}, "rollbacks": []}


def test_a_scenario_that_burns_more_than_allowed_fails() -> None:
    limits = criteria(max_budget_share=0.01)  # at most 1 % of 2,592 s: 25.92 s
    over = judge(_journal_with(300, 30.0), limits)
    assert over["passed"] is False
    assert [r["kind"] for r in over["reasons"]] == ["budget"]
    assert "consumed 1.16% of the error budget, above 1.00%" in over["reasons"][0]["message"]
    assert judge(_journal_with(200, 20.0), limits)["passed"] is True
    # A tighter SLO makes the same outage cost more: 99.99 % allows 259.2 s.
    strict = criteria(max_budget_share=0.05, slo_target=0.9999)
    assert judge(_journal_with(200, 20.0), strict)["passed"] is False


def test_budget_settings_from_experiments_parse() -> None:
    # What chaoslib passes when the keys come from the environment or are left empty.
    given = criteria(
        min_success_rate=0.95, max_budget_share="", slo_target="0.995", slo_period_days=7.0,
        slo_latency_p99_ms="",
    )  # fmt: skip
    assert given["max_budget_share"] is None and given["slo_target"] == 0.995
    assert given["slo_latency_p99_ms"] is None
    with pytest.raises(ValueError, match="max_budget_share must be a number >= 0"):
        criteria(max_budget_share=-1)


def test_slow_requests_cost_time_even_when_nothing_failed() -> None:
    # 600 requests at 10/s, none failed, 6 slower than the objective.
    budget = slo.budget(
        slo.slo(latency_p99_ms=200), requests=600, failed=0,
        failure_equivalent_downtime_s=0.0, slow_requests=6, interval_s=0.1,
    )  # fmt: skip
    assert budget["consumed_s"] == pytest.approx(0.6)
    assert budget["consumed_requests"] == 6
    assert budget["share"] == pytest.approx(0.6 / 2592.0)
