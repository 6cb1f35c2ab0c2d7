"""The K6 control: load runs for the whole experiment.

Declare it at experiment level::

    "controls": [{
        "name": "k6-load",
        "provider": {
            "type": "python",
            "module": "chaosray.load.control",
            "arguments": {"target_url": "${inference_base_url}", "rate": 10}
        }
    }]

k6 starts before the steady-state hypothesis and is stopped when the
experiment ends (after the rollbacks); its results go into the journal as a
run entry named ``k6-load`` (which ``chaos report`` shows) and under
``journal["chaosray"]["k6"]``. ``cleanup_control`` stops it too, so an
interrupted experiment (Ctrl-C) never leaves load running; on Ctrl-C or
SIGTERM the control also stops the availability monitors at once (Chaos
Toolkit would otherwise wait for those background probes to finish).

Modes (argument ``mode``):

- ``local`` (default): the k6 binary of the ``k6`` package on this machine.
- ``job``: a ConfigMap with the script and a Job running ``grafana/k6`` in
  ``namespace`` (``image`` to change it), every parameter as an environment
  variable; stopped through k6's REST API via the API server (pod proxy, else
  port-forward); the summary is read from the pod's log. The Job and the
  ConfigMap are always deleted afterwards, also on failure and on Ctrl-C.
- ``operator``: the same as a k6-operator ``TestRun`` (the operator must be
  installed); the TestRun and ConfigMap are always deleted afterwards.

Arguments of the in-cluster modes: ``namespace`` (default ``default``),
``image`` (default ``grafana/k6:1.1.0``), ``node_selector`` (keep k6 off the
nodes the experiment disrupts: a drained node evicts it, and a Job does not
restart it), ``pod_annotations`` (for example ``sidecar.istio.io/inject:
"false"``), ``start_timeout`` (seconds until k6 must run, default 120; a pod
that cannot be scheduled or pulled fails with its state) and ``stop_timeout``
(seconds for k6 to end once stopped, default 60). A target URL naming a
Service (``http://name.namespace.svc:port``) is checked before the start
through the API server's service proxy; any other URL from this machine
(``preflight: false`` skips the check). chaosray needs, in ``namespace``:
create, get, patch and delete on configmaps and jobs (or testruns.k6.io);
get, list and watch on pods; list on events; get on pods/log; and get and
patch on pods/proxy, or get and create on pods/portforward.

Open-loop load (k6's constant-arrival-rate): ``timeout`` (default ``5s``)
is each request's limit, ``max_vus`` the VU ceiling (default ``rate x
timeout x 1.5 + 10``, enough for every request of a blackhole outage to wait
out its timeout). An iteration k6 still cannot start is a
``dropped_iterations`` point: the results count it as a failed request
(``dropped_iterations`` says how many), and the failure-rate threshold is
checked on that count too.

In ``job`` and ``operator`` modes the results hold the summary figures
(requests, success rate, latency percentiles, thresholds); the per-request
timeline (keyed by each request's send time, which the script records) and
the downtime and outage windows are measured in ``local`` mode only.

A run whose thresholds failed (k6 exit code 99, or a threshold marked failed
in the summary) is a *failed* run entry, never a success.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed, InterruptExecution, InvalidActivity
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosray import interrupts
from chaosray.inference import InferenceTarget, send
from chaosray.journal import add_control_entry, mark_interrupted_runs
from chaosray.load.k6 import LocalK6, stop_all_local_runs
from chaosray.load.k6_cluster import (
    DEFAULT_IMAGE,
    ClusterK6,
    JobK6,
    TestRunK6,
    is_cluster_url,
    preflight_through_service_proxy,
    stop_all_cluster_runs,
)
from chaosray.load.monitor import stop_all_monitors
from chaosray.nlb.probes import base_url

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "cleanup_control",
    "validate_control",
]

logger = logging.getLogger("chaostoolkit")

MODES = ("local", "job", "operator")
DURATION_RE = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
MAX_RATE = 10_000
RUN_NAME = "k6-load"

# The runs this control started, with whether to keep their raw output.
_active: list[tuple[LocalK6 | ClusterK6, bool]] = []
# Work folders this control made for local runs (no results_dir given): removed
# once their results are in the journal, unless keep_output asks otherwise.
_temporary_dirs: set[Path] = set()


def _string_map(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{name} must be an object of strings, got {value!r}")
    for key in value:
        if not LABEL_KEY_RE.match(key):
            raise ValueError(f"{name}: {key!r} is not a valid Kubernetes label/annotation key")
    return dict(value)


def _seconds(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 86400:
        raise ValueError(f"{name} must be a number of seconds in (0, 86400], got {value!r}")
    return float(value)


def _settings(
    target_url: str,
    mode: str = "local",
    path: str = "/",
    method: str = "POST",
    payload: str = "{}",
    rate: int = 10,
    duration: str = "1h",
    timeout: str | float = "5s",
    max_vus: int | None = None,
    threshold_failure_rate: float | None = 0.05,
    threshold_p95_ms: float | None = None,
    threshold_p99_ms: float | None = None,
    expect_status: list[int] | None = None,
    results_dir: str | None = None,
    preflight: bool = True,
    k6_binary: str | None = None,
    script: str | None = None,
    keep_output: bool = False,
    namespace: str = "default",
    image: str = DEFAULT_IMAGE,
    node_selector: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
    start_timeout: float = 120.0,
    stop_timeout: float = 60.0,
) -> dict[str, Any]:
    """Check the control's arguments; raise ``ValueError`` naming the bad one."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if not isinstance(namespace, str) or len(namespace) > 63 or not NAMESPACE_RE.match(namespace):
        raise ValueError(
            f"namespace {namespace!r} is not a valid Kubernetes namespace name "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    if not isinstance(image, str) or not image or any(ch.isspace() for ch in image):
        raise ValueError(f"image {image!r} is not a container image reference")
    if not isinstance(target_url, str) or not re.match(r"^https?://[^/\s]+", target_url):
        raise ValueError(f"target_url {target_url!r} is not an http(s) URL")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 0 < rate <= MAX_RATE:
        raise ValueError(
            f"rate must be a whole number of requests/s in 1..{MAX_RATE}, got {rate!r}"
        )
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        # Seconds, as the experiments' request_timeout_s gives it: one
        # definition of a failed request for k6 and the monitor.
        if not 0 < timeout <= 3600:
            raise ValueError(f"timeout must be > 0 and <= 3600 seconds, got {timeout!r}")
        timeout = f"{round(timeout * 1000)}ms"
    for name, value in (("duration", duration), ("timeout", timeout)):
        if not isinstance(value, str) or not DURATION_RE.match(value):
            raise ValueError(
                f"{name} must be a k6 duration such as 90s, 5m or 1h30m, got {value!r}"
            )
    if method.upper() not in ("GET", "POST", "PUT"):
        raise ValueError(f"method {method!r} is not one of GET, POST, PUT")
    if max_vus is not None and (
        not isinstance(max_vus, int) or isinstance(max_vus, bool) or max_vus < 1
    ):
        raise ValueError(f"max_vus must be a whole number >= 1, got {max_vus!r}")
    env = {
        "TARGET_URL": target_url,
        "TARGET_PATH": path if path.startswith("/") else "/" + path,
        "METHOD": method.upper(),
        "PAYLOAD": payload,
        "RATE": str(rate),
        "DURATION": duration,
        "TIMEOUT": timeout,
        "THRESHOLD_FAILURE_RATE": ""
        if threshold_failure_rate is None
        else str(threshold_failure_rate),
        "THRESHOLD_P95_MS": "" if threshold_p95_ms is None else str(threshold_p95_ms),
        "THRESHOLD_P99_MS": "" if threshold_p99_ms is None else str(threshold_p99_ms),
        "EXPECT_STATUS": ",".join(str(s) for s in expect_status or []),
    }
    if max_vus is not None:
        env["MAX_VUS"] = str(max_vus)
    return {
        "mode": mode,
        "env": env,
        "results_dir": results_dir,
        "preflight": preflight,
        "k6_binary": k6_binary,
        "script": script,
        "keep_output": keep_output,
        "expect_status": expect_status,
        "namespace": namespace,
        "image": image,
        "node_selector": _string_map("node_selector", node_selector),
        "pod_annotations": _string_map("pod_annotations", pod_annotations),
        "start_timeout": _seconds("start_timeout", start_timeout),
        "stop_timeout": _seconds("stop_timeout", stop_timeout),
    }


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: refuse bad arguments before anything runs."""
    arguments = dict(control.get("provider", {}).get("arguments", {}))
    if any(isinstance(v, str) and "${" in v for v in arguments.values()):
        return  # substituted at run time; checked then
    service = arguments.pop("service_name", None)
    if not arguments.get("target_url") and service:
        # The address is resolved at run time; check the rest with a stand-in.
        arguments["target_url"] = "http://load-balancer.invalid"
    try:
        _settings(**arguments)
    except (TypeError, ValueError) as exc:
        raise InvalidActivity(f"control {control.get('name')!r}: {exc}") from None


def _with_target(arguments: dict[str, Any], secrets: Secrets) -> dict[str, Any]:
    """``target_url``, else the load balancer address of Service ``service_name``."""
    resolved = dict(arguments)
    service = resolved.pop("service_name", None)
    if not resolved.get("target_url"):
        if not service:
            raise ValueError("give target_url, or the service_name of the LoadBalancer Service")
        namespace = str(resolved.get("namespace") or "default")
        resolved["target_url"] = base_url(None, str(service), namespace, secrets)
    return resolved


def _preflight(settings: dict[str, Any], secrets: Secrets = None) -> None:
    env = settings["env"]
    url = env["TARGET_URL"].rstrip("/") + env["TARGET_PATH"]
    if settings["mode"] != "local" and is_cluster_url(url):
        # k6 runs in the cluster: check the Service from there, through the API server.
        preflight_through_service_proxy(
            url, env["METHOD"], env["PAYLOAD"], settings["expect_status"], secrets
        )
        return
    target = InferenceTarget.build(
        url, env["METHOD"], env["PAYLOAD"], expect_status=settings["expect_status"]
    )
    with requests.Session() as session:
        first = send(session, target)
    if not first.ok:
        raise ActivityFailed(f"k6 target {url} does not answer: {first.error}")


def before_experiment_control(
    context: Experiment,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Start k6 before the experiment; interrupt the experiment with a clear
    message if it cannot start (bad argument, no k6, unreachable target, a k6
    pod that does not run); nothing it created is left behind then."""
    run: LocalK6 | ClusterK6
    try:
        settings = _settings(**_with_target(arguments, secrets))
        if settings["preflight"]:
            _preflight(settings, secrets)
        if settings["mode"] == "local":
            if settings["results_dir"]:
                work_dir = Path(settings["results_dir"])
                work_dir.mkdir(parents=True, exist_ok=True)
            else:
                work_dir = Path(tempfile.mkdtemp(prefix="chaosray-k6-"))
                if not settings["keep_output"]:
                    _temporary_dirs.add(work_dir)
            script = Path(settings["script"]) if settings["script"] else None
            run = LocalK6(settings["env"], work_dir, script, settings["k6_binary"])
        else:
            runner = JobK6 if settings["mode"] == "job" else TestRunK6
            run = runner(
                settings["env"],
                namespace=settings["namespace"],
                image=settings["image"],
                secrets=secrets,
                script=settings["script"],
                node_selector=settings["node_selector"],
                pod_annotations=settings["pod_annotations"],
                start_timeout=settings["start_timeout"],
                stop_timeout=settings["stop_timeout"],
            )
        run.start()
    except (TypeError, ValueError, ActivityFailed) as exc:
        logger.error(f"K6 control: cannot start the load: {exc}")
        raise InterruptExecution(f"K6 control: cannot start the load: {exc}") from None
    _active.append((run, bool(settings["keep_output"])))
    interrupts.hook(configuration, secrets)
    env = settings["env"]
    where = f" ({run.mode} {run.namespace}/{run.name})" if isinstance(run, ClusterK6) else ""
    logger.info(f"K6 control: load running at {env['RATE']}/s against {env['TARGET_URL']}{where}")


def after_experiment_control(
    context: Experiment,
    state: Journal,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **arguments: Any,
) -> None:
    """Stop k6, read its results and add them to the journal."""
    # An activity cut off by Ctrl-C has no status, which crashes `chaos report`.
    mark_interrupted_runs(state)
    while _active:
        run, keep_output = _active.pop()
        started = time.time()
        mode = run.mode if isinstance(run, ClusterK6) else "local"
        try:
            run.stop()
            result = run.result()
        except Exception as exc:  # the journal must say what happened, whatever it was
            logger.error(f"K6 control: collecting the results failed: {exc}")
            result = {"mode": mode, "status": "error", "error": str(exc)}
        finally:
            if isinstance(run, ClusterK6):
                run.delete()
        if isinstance(run, LocalK6) and not keep_output:
            run.output_path.unlink(missing_ok=True)
            _remove_temporary(run.work_dir)
        if result.get("error"):
            logger.error(f"K6 control: {result['error']}")
        record_in_journal(state, result, arguments, started)


def cleanup_control() -> None:
    """Stop any load still running (k6, availability monitors) and delete any
    k6 Job, TestRun or ConfigMap still there (interrupted experiment)."""
    _active.clear()
    interrupts.unhook()
    stop_all_monitors()
    stopped = stop_all_local_runs()
    for work_dir in list(_temporary_dirs):
        _remove_temporary(work_dir)
    if stopped:
        logger.warning(f"K6 control: stopped {stopped} k6 run(s) left running")
    deleted = stop_all_cluster_runs()
    if deleted:
        logger.warning(f"K6 control: deleted {deleted} in-cluster k6 run(s) left behind")


def _remove_temporary(work_dir: Path) -> None:
    if work_dir in _temporary_dirs:
        _temporary_dirs.discard(work_dir)
        shutil.rmtree(work_dir, ignore_errors=True)


def record_in_journal(
    journal: Journal, result: dict[str, Any], arguments: dict[str, Any], collected_at: float
) -> None:
    """A run entry ``k6-load`` (failed unless the load passed) and
    ``journal["chaosray"]["k6"]``."""
    status = result.get("status")
    failure = None
    if status != "passed":
        reason = result.get("error") or result.get("exit_reason") or status
        failure = f"k6 load {status}: {reason}"
    add_control_entry(
        journal,
        name=RUN_NAME,
        module="chaosray.load.control",
        func="k6_load",
        arguments=arguments,
        output=result,
        started_at=result.get("started_at") or collected_at,
        ended_at=result.get("ended_at") or time.time(),
        failure=failure,
    )
    journal.setdefault("chaosray", {})["k6"] = result


# The arguments this control takes, for chaosray.guard's settings check.
control_arguments = _settings
