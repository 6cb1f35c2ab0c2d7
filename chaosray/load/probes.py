"""Probes of the load domain: the availability monitor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray.contract import AVAILABILITY_KEY, availability_of
from chaosray.inference import InferenceTarget, send
from chaosray.load.monitor import MAX_RATE, AvailabilityMonitor
from chaosray.nlb.probes import base_url, join_path

__all__ = ["monitor_availability"]

logger = logging.getLogger("chaostoolkit")

MAX_DURATION_S = 24 * 3600.0


def monitor_availability(
    url: str | None = None,
    duration: float = 300.0,
    rate: float = 10.0,
    method: str = "POST",
    payload: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
    expect_status: list[int] | None = None,
    require_reachable: bool = True,
    samples_path: str | None = None,
    service_name: str | None = None,
    namespace: str = "default",
    path: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Send inference requests to `url` (else to the load balancer address of
    Service `service_name` in `namespace`), plus `path`, at a fixed `rate` (requests per second,
    default 10, up to 1000) for `duration` seconds, open loop, and measure
    availability as users see it. Run it as a background activity while a
    disruption happens.

    A request fails on a connection error, a timeout (`timeout` seconds) or a
    status outside `expect_status` (default: any 2xx). With
    `require_reachable` (default), one request is sent first and the probe
    fails at once if the endpoint does not answer, instead of measuring an
    outage that began before the experiment. `samples_path` writes every
    request as a JSON line for plotting.

    Returns: `requests`, `succeeded`, `failed`, `success_rate` (exact),
    `latency_s` (p50/p95/p99/min/max of successful requests, with
    `exact` and `relative_error_bound`), `downtime_windows` (runs of failed
    requests: `start`/`end` epoch seconds, `duration_s`, `failed_requests`,
    `open` when the run had not ended), `total_downtime_s`,
    `longest_outage_s`, `recovered_at`, `still_down`, `timeline` (per-second
    ok/failed counts), `errors` (the most common errors), `send_lag_s`.
    The resolution of the downtime figures is one request interval (1/rate).
    """
    url = join_path(base_url(url, service_name, namespace, secrets), path)
    target = InferenceTarget.build(url, method, payload, headers, timeout, expect_status)
    if not isinstance(rate, int | float) or not 0 < rate <= MAX_RATE:
        raise ActivityFailed(f"rate must be > 0 and <= {MAX_RATE:g} requests/s, got {rate!r}")
    if not isinstance(duration, int | float) or not 0 < duration <= MAX_DURATION_S:
        raise ActivityFailed(
            f"duration must be > 0 and <= {MAX_DURATION_S:g} seconds, got {duration!r}"
        )
    samples_file = Path(samples_path) if samples_path else None
    if samples_file is not None and not samples_file.parent.is_dir():
        raise ActivityFailed(
            f"samples_path {samples_path!r}: directory {samples_file.parent} does not exist"
        )
    if require_reachable:
        with requests.Session() as session:
            first = send(session, target)
        if not first.ok:
            raise ActivityFailed(
                f"inference endpoint {url} does not answer before monitoring starts: "
                f"{first.error}. Check the URL, or set require_reachable to false to "
                "measure an endpoint that is already down."
            )
    logger.info(f"Monitoring {url} at {rate:g} requests/s for {duration:g}s")
    summary = AvailabilityMonitor(target, float(rate), float(duration), samples_file).run()
    rate_text = "n/a" if summary["success_rate"] is None else f"{summary['success_rate']:.4%}"
    logger.info(
        f"Monitor of {url}: {summary['requests']} requests, success {rate_text}, "
        f"downtime {summary['total_downtime_s']:.2f}s "
        f"in {len(summary['downtime_windows'])} window(s)"
    )
    summary["timeout_s"] = target.timeout  # a slower request counts as failed
    summary[AVAILABILITY_KEY] = availability_of(summary)
    return summary
