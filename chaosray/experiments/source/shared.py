"""What several experiments share, written once.

An experiment gets a configuration key from here only when it uses it
(``scripts/write_experiments.py`` leaves the others out); its own module may
declare a key of its own, or the same key with another default.
"""

from __future__ import annotations

from typing import Any

VERSION = "1.0.0"


def env(variable: str, default: Any, env_var_type: str | None = None) -> dict[str, Any]:
    """A configuration key read from the environment ``variable``, else ``default``."""
    declaration: dict[str, Any] = {"type": "env", "key": variable, "default": default}
    if env_var_type is not None:
        declaration["env_var_type"] = env_var_type
    return declaration


# The deployment, the load and the timings several experiments use, in the
# order the experiments declare them.
CONFIGURATION: dict[str, Any] = {
    "namespace": env("CHAOSRAY_NAMESPACE", "ray-serve"),
    "ray_cluster": env("CHAOSRAY_RAY_CLUSTER", "ray-serve"),
    "redis_selector": env("CHAOSRAY_REDIS_SELECTOR", "app=redis"),
    "worker_pdb": env("CHAOSRAY_WORKER_PDB", "ray-worker-pdb"),
    "redis_pdb": env("CHAOSRAY_REDIS_PDB", "redis-pdb"),
    "pdb_min_available": env("CHAOSRAY_PDB_MIN_AVAILABLE", 2, "int"),
    "expected_workers": env("CHAOSRAY_EXPECTED_WORKERS", 3, "int"),
    "expected_redis": env("CHAOSRAY_EXPECTED_REDIS", 3, "int"),
    # How chaosray reaches Redis (chaosray/redis/probes.py): exec in the pods,
    # or direct to addresses (pod -> host:port).
    "redis_mode": env("CHAOSRAY_REDIS_MODE", "exec"),
    "redis_addresses": {},
    "min_ready_workers": env("CHAOSRAY_MIN_READY_WORKERS", 2, "int"),
    "nlb_service": env("CHAOSRAY_NLB_SERVICE", "ray-serve-nlb"),
    "inference_url": env("CHAOSRAY_INFERENCE_URL", ""),
    "inference_path": env("CHAOSRAY_INFERENCE_PATH", "/"),
    "inference_method": env("CHAOSRAY_INFERENCE_METHOD", "POST"),
    "inference_payload": env("CHAOSRAY_INFERENCE_PAYLOAD", "{}"),
    "health_path": env("CHAOSRAY_HEALTH_PATH", "/-/healthz"),
    "request_timeout_s": env("CHAOSRAY_REQUEST_TIMEOUT_S", 2.0, "float"),
    "monitor_rate": env("CHAOSRAY_MONITOR_RATE", 10.0, "float"),
    "load_rate": env("CHAOSRAY_LOAD_RATE", 10, "int"),
    "load_mode": env("CHAOSRAY_LOAD_MODE", "local"),
    "load_threshold_failure_rate": env("CHAOSRAY_LOAD_THRESHOLD_FAILURE_RATE", 0.05, "float"),
    "baseline_s": env("CHAOSRAY_BASELINE_S", 30.0, "float"),
    "min_success_rate": env("CHAOSRAY_MIN_SUCCESS_RATE", 0.95, "float"),
    "ray_dashboard_url": env("CHAOSRAY_RAY_DASHBOARD_URL", ""),
    "monitor_samples_path": env("CHAOSRAY_MONITOR_SAMPLES_PATH", ""),
    "observe_s": env("CHAOSRAY_OBSERVE_S", 300.0, "float"),
    "monitor_duration_s": env("CHAOSRAY_MONITOR_DURATION_S", 3600.0, "float"),
    "replacement_timeout_s": env("CHAOSRAY_REPLACEMENT_TIMEOUT_S", 300.0, "float"),
    "head_ready_timeout_s": env("CHAOSRAY_HEAD_READY_TIMEOUT_S", 180.0, "float"),
    # The error budget (chaosray/slo.py): the SLO, and the most of its
    # period's budget one scenario may burn ("" = no limit).
    "slo_target": env("CHAOSRAY_SLO_TARGET", 0.999, "float"),
    "slo_period_days": env("CHAOSRAY_SLO_PERIOD_DAYS", 30.0, "float"),
    "slo_latency_p99_ms": env("CHAOSRAY_SLO_LATENCY_P99_MS", ""),
    "max_budget_share": env("CHAOSRAY_MAX_BUDGET_SHARE", ""),
    # Outage limits on what users saw ("" = no limit; the plan sets none):
    # the total time in downtime windows, and the longest window.
    "max_downtime_s": env("CHAOSRAY_MAX_DOWNTIME_S", ""),
    "max_longest_outage_s": env("CHAOSRAY_MAX_LONGEST_OUTAGE_S", ""),
    # A run whose only shortfalls are criteria nobody measured: "failed" or
    # "inconclusive" (never passed; the suite exits 3 when that is all).
    "no_evidence_verdict": env("CHAOSRAY_NO_EVIDENCE_VERDICT", "failed"),
}

# The safety settings (chaosray/k8s/safety.py), declared last; reads.py says
# which activities and controls read them.
SAFETY: dict[str, Any] = {
    "chaosray_allowed_contexts": env("CHAOSRAY_ALLOWED_CONTEXTS", ""),
    "chaosray_dry_run": env("CHAOSRAY_DRY_RUN", ""),
    "chaosray_max_pods_per_action": env("CHAOSRAY_MAX_PODS_PER_ACTION", ""),
}

# --- selectors ------------------------------------------------------------------------------

WORKERS = "ray.io/cluster=${ray_cluster},ray.io/node-type=worker"
HEAD = "ray.io/cluster=${ray_cluster},ray.io/node-type=head"
REDIS = "${redis_selector}"

# --- controls -------------------------------------------------------------------------------

SETTINGS_CHECK: dict[str, Any] = {
    "name": "settings-check",
    "provider": {"type": "python", "module": "chaosray.guard"},
}

K6_LOAD: dict[str, Any] = {
    "name": "k6-load",
    "provider": {
        "type": "python",
        "module": "chaosray.load.control",
        "arguments": {
            "mode": "${load_mode}",
            "target_url": "${inference_url}",
            "service_name": "${nlb_service}",
            "namespace": "${namespace}",
            "path": "${inference_path}",
            "method": "${inference_method}",
            "payload": "${inference_payload}",
            "rate": "${load_rate}",
            "threshold_failure_rate": "${load_threshold_failure_rate}",
            # The monitor's timeout: one definition of a failed request.
            "timeout": "${request_timeout_s}",
        },
    },
}

POD_TIMELINE: dict[str, Any] = {
    "name": "pod-timeline",
    "provider": {
        "type": "python",
        "module": "chaosray.k8s.control",
        "arguments": {
            "namespace": "${namespace}",
            "selectors": {"workers": WORKERS, "head": HEAD, "redis": REDIS},
            # The endpoints users reach and Ray's own view (sampled through
            # the dashboard), for the outage windows' causes.
            "service": "${nlb_service}",
            "ray_cluster": "${ray_cluster}",
            "ray_dashboard_url": "${ray_dashboard_url}",
        },
    },
}


def verdict(
    min_success_rate: str | None = None, max_downtime_s: str = "max_downtime_s"
) -> dict[str, Any]:
    """The verdict control; ``min_success_rate``: the key of its threshold
    (None: a validation, judged on its probes only); ``max_downtime_s``: the
    key of its total-downtime limit."""
    provider: dict[str, Any] = {"type": "python", "module": "chaosray.verdict"}
    if min_success_rate is not None:
        provider["arguments"] = {
            "min_success_rate": "${" + min_success_rate + "}",
            "max_downtime_s": "${" + max_downtime_s + "}",
            "max_longest_outage_s": "${max_longest_outage_s}",
            "max_budget_share": "${max_budget_share}",
            "slo_target": "${slo_target}",
            "slo_period_days": "${slo_period_days}",
            "slo_latency_p99_ms": "${slo_latency_p99_ms}",
            # A dry run, a skipped step or a measurement that missed the
            # disruption is "not measured", never a pass.
            "disruptive": True,
            "no_evidence": "${no_evidence_verdict}",
        }
    return {"name": "verdict", "provider": provider}


def disruptive_controls(
    min_success_rate: str = "min_success_rate", max_downtime_s: str = "max_downtime_s"
) -> list[dict[str, Any]]:
    """A scenario's controls: the settings check first (nothing may start
    before it has looked), the load, the pod timeline, the verdict."""
    return [SETTINGS_CHECK, K6_LOAD, POD_TIMELINE, verdict(min_success_rate, max_downtime_s)]


VALIDATION_CONTROLS: list[dict[str, Any]] = [SETTINGS_CHECK, verdict()]

CONTRIBUTIONS: dict[str, Any] = {"availability": "high", "reliability": "high"}
ROLLBACKS_ALWAYS: dict[str, Any] = {"rollbacks": {"strategy": "always"}}
SERVICE_IS_WHOLE = "The inference service is whole"

# The inference endpoint, as every request-sending activity takes it.
ENDPOINT: dict[str, Any] = {
    "url": "${inference_url}",
    "service_name": "${nlb_service}",
    "namespace": "${namespace}",
    "path": "${inference_path}",
    "method": "${inference_method}",
    "payload": "${inference_payload}",
}

# --- probes and actions ---------------------------------------------------------------------


def count_ready(name: str, label_selector: str, tolerance: Any) -> dict[str, Any]:
    """A steady-state probe: exactly ``tolerance`` Ready pods of ``label_selector``."""
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.k8s.probes",
            "func": "count_ready_pods",
            "arguments": {"label_selector": label_selector, "namespace": "${namespace}"},
        },
        "tolerance": tolerance,
    }


WORKERS_READY = count_ready("ray-workers-ready", WORKERS, "${expected_workers}")
HEAD_READY = count_ready("ray-head-ready", HEAD, 1)
REDIS_READY = count_ready("redis-pods-ready", REDIS, "${expected_redis}")


# Before any drain choice: the Redis primary's node is spared, so a worker's
# drain does not take the primary (a failover and a GCS restart) with it.
REDIS_PRIMARY_SPARED: dict[str, Any] = {
    "type": "probe",
    "name": "redis-primary-node-spared",
    "provider": {
        "type": "python",
        "module": "chaosray.redis.probes",
        "func": "redis_primary_node",
        "arguments": {
            "namespace": "${namespace}",
            "label_selector": REDIS,
            "mode": "${redis_mode}",
            "addresses": "${redis_addresses}",
        },
    },
}


def inference_succeeds(name: str = "inference-succeeds") -> dict[str, Any]:
    """A steady-state probe: one inference request succeeds."""
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.nlb.probes",
            "func": "inference_request",
            "arguments": {
                **ENDPOINT,
                "timeout": 10.0,
            },
        },
        "tolerance": {"type": "jsonpath", "path": "$.ok", "expect": True},
    }


def inference_n_of_n(
    name: str, count: str, timeout: float | str, require_all: bool
) -> dict[str, Any]:
    """A probe: ``count`` inference requests one after another, no retries,
    each within ``timeout`` seconds; ``require_all``: fail unless every one
    succeeded (in a method; a hypothesis takes the tolerance instead)."""
    arguments: dict[str, Any] = {
        **ENDPOINT,
        "requests_count": count,
        "timeout": timeout,
    }
    if require_all:
        arguments["require_all"] = True
    probe: dict[str, Any] = {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.nlb.probes",
            "func": "inference_success_count",
            "arguments": arguments,
        },
    }
    if not require_all:
        probe["tolerance"] = {"type": "jsonpath", "path": "$.all_succeeded", "expect": True}
    return probe


# The method's first step: measures availability in the background until
# stop_availability_monitor().
AVAILABILITY_MONITOR: dict[str, Any] = {
    "type": "probe",
    "name": "availability-monitor",
    "provider": {
        "type": "python",
        "module": "chaosray.load.probes",
        "func": "monitor_availability",
        "arguments": {
            **ENDPOINT,
            "rate": "${monitor_rate}",
            "duration": "${monitor_duration_s}",
            "timeout": "${request_timeout_s}",
            "samples_path": "${monitor_samples_path}",
        },
    },
    "background": True,
}


def stop_availability_monitor(observe_s: bool = False) -> dict[str, Any]:
    """The method's last step: ends the monitor once it has measured
    ``baseline_s`` (plus ``observe_s`` with ``observe_s=True``)."""
    arguments = {"baseline_s": "${baseline_s}"}
    if observe_s:
        arguments["observe_s"] = "${observe_s}"
    return {
        "type": "action",
        "name": "stop-availability-monitor",
        "provider": {
            "type": "python",
            "module": "chaosray.load.actions",
            "func": "stop_availability_monitors",
            "arguments": arguments,
        },
    }


def workers_ready_again(name: str) -> dict[str, Any]:
    """Wait until ``expected_workers`` workers are Ready (``replacement_timeout_s``)."""
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.k8s.probes",
            "func": "wait_for_ready_pods",
            "arguments": {
                "label_selector": WORKERS,
                "count": "${expected_workers}",
                "namespace": "${namespace}",
                "timeout": "${replacement_timeout_s}",
            },
        },
    }


def uncordon_all(name: str = "uncordon-nodes-chaosray-cordoned") -> dict[str, Any]:
    """Uncordon exactly the nodes chaosray cordoned."""
    return {
        "type": "action",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosray.k8s.actions",
            "func": "uncordon_all",
            "arguments": {},
        },
    }


NO_NODE_LEFT_CORDONED: dict[str, Any] = {
    "type": "probe",
    "name": "no-node-left-cordoned-by-chaosray",
    "provider": {
        "type": "python",
        "module": "chaosray.k8s.probes",
        "func": "cordoned_nodes",
        "arguments": {"fail_if_ours": True},
    },
}
