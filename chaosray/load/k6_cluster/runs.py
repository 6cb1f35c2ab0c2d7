"""The in-cluster k6 runs: a Job (``mode: job``) or a k6-operator TestRun
(``mode: operator``), created, watched, stopped and deleted (no activities)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.client import (
    REQUEST_TIMEOUT,
    batch_v1,
    core_v1,
    custom_objects,
)
from chaosray.k8s.pods import api_call, api_message, list_pods, read, watch_pods
from chaosray.load.k6 import default_script, k6_result, summary_from_log
from chaosray.load.k6_cluster.names import (
    API_PORT,
    CONTAINER,
    DEFAULT_IMAGE,
    RUN_LABEL,
    SCRIPT_DIR,
    SCRIPT_KEY,
    TESTRUN_API,
    run_labels,
)
from chaosray.load.k6_cluster.pods import (
    FATAL_WAITING,
    container_state,
    describe_pod_state,
    exit_code,
    pod_ended,
    pod_running,
)
from chaosray.load.k6_cluster.preflight import require_testrun_crd
from chaosray.load.k6_cluster.rest import STOP_BODY, K6RestApi
from chaosray.wait import WaitTimeout, wait_until

__all__: list[str] = []  # engine; the control is chaosray.load.control

logger = logging.getLogger("chaostoolkit")

DEADLINE_MARGIN_S = 300  # activeDeadlineSeconds = duration + this
TTL_AFTER_FINISHED_S = 600
LOG_SETTLE_S = 10.0  # how long a finished pod's log may still be arriving
LOG_TAIL_LINES = 2000
K6_COMMAND = [
    "k6", "run", "--address", f"0.0.0.0:{API_PORT}", "--quiet", "--no-color",
    f"{SCRIPT_DIR}/{SCRIPT_KEY}",
]  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_running: set[ClusterK6] = set()
_running_lock = threading.Lock()


def duration_seconds(duration: str) -> float:
    """Seconds of a k6 duration such as ``90s``, ``5m`` or ``1h30m``."""
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(duration))


def registered_runs() -> list[ClusterK6]:
    """The runs of this process that still have something in the cluster."""
    with _running_lock:
        return list(_running)


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == 404


class ClusterK6:
    """One k6 run in the cluster. ``start()`` creates it and waits until k6
    runs; ``stop()`` stops it and reads its log; ``delete()`` removes all it
    created (idempotent; always call it)."""

    mode = "cluster"

    def __init__(
        self,
        env: dict[str, str],
        namespace: str = "default",
        image: str = DEFAULT_IMAGE,
        secrets: Secrets = None,
        script: str | None = None,
        node_selector: dict[str, str] | None = None,
        pod_annotations: dict[str, str] | None = None,
        start_timeout: float = 120.0,
        stop_timeout: float = 60.0,
    ) -> None:
        self.run_id = uuid.uuid4().hex[:10]
        self.name = f"chaosray-k6-{self.run_id}"
        self.namespace = namespace
        self.image = image
        self.secrets = secrets
        path = script or str(default_script())
        try:
            with open(path, encoding="utf-8") as handle:
                self.script = handle.read()
        except OSError as exc:
            raise ActivityFailed(f"k6 script {path} cannot be read: {exc}") from None
        self.env = {
            **env,
            "SUMMARY_STDOUT": "true",
            "SUMMARY_PATH": "",
            "K6_NO_USAGE_REPORT": "true",
        }
        self.node_selector = dict(node_selector or {})
        self.pod_annotations = dict(pod_annotations or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.labels = run_labels(self.run_id)
        self.created: list[tuple[str, str]] = []  # (kind, name), in creation order
        self.pod: str | None = None
        self.log = ""
        self.exit_code: int | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stop_route: str | None = None
        self.api: K6RestApi | None = None  # keeps which route to try first
        self.problems: list[str] = []
        self._deleted = False

    # -- what subclasses define -------------------------------------------------
    def _create_workload(self) -> dict[str, Any]:
        """Create the Job or TestRun; return it (for the ConfigMap's owner)."""
        raise NotImplementedError

    def _delete_workload(self) -> None:
        raise NotImplementedError

    def _pod_selector(self) -> str:
        raise NotImplementedError

    def _check_progress(self) -> None:
        """Raise ``ActivityFailed`` if the workload itself reports a failure."""

    def _waiting_for(self) -> str:
        return "the k6 pod to run"

    def _no_pod(self) -> str:
        return "no pod was created for it"

    # -- the lifecycle ----------------------------------------------------------
    def env_list(self) -> list[dict[str, str]]:
        return [{"name": key, "value": value} for key, value in self.env.items()]

    def config_map(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "data": {SCRIPT_KEY: self.script},
        }

    def create(self) -> None:
        """Create the ConfigMap and the workload (nothing is waited for)."""
        with _running_lock:
            _running.add(self)
        core = core_v1(self.secrets)
        api_call(
            lambda: core.create_namespaced_config_map(
                self.namespace, self.config_map(), _request_timeout=REQUEST_TIMEOUT
            ),
            f"create ConfigMap {self.namespace}/{self.name}",
        )
        self.created.append(("ConfigMap", self.name))
        owner = self._create_workload()
        # The ConfigMap goes with its Job (or TestRun) should chaosray die.
        reference = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        try:
            api_call(
                lambda: core.patch_namespaced_config_map(
                    self.name,
                    self.namespace,
                    {"metadata": {"ownerReferences": [reference]}},
                    _request_timeout=REQUEST_TIMEOUT,
                ),
                f"patch ConfigMap {self.namespace}/{self.name}",
            )
        except ActivityFailed as exc:  # not fatal: delete() and the leftover cleanup remove it
            logger.warning(f"K6 control: cannot make the ConfigMap owned by {self.name}: {exc}")

    def start(self) -> None:
        """Create everything and wait until k6 runs; on any failure (or
        Ctrl-C) delete what was created, then raise."""
        try:
            self.create()
            self.wait_running()
        except BaseException:
            self.delete()
            raise

    def wait_running(self) -> None:
        """Wait until the k6 pod runs and k6's REST API says the test runs."""
        core = core_v1(self.secrets)
        deadline = time.monotonic() + self.start_timeout
        selector = self._pod_selector()
        listing = list_pods(core, self.namespace, selector)
        pods = {p.metadata.name: p for p in listing.items}
        current: Any = None

        def settled() -> bool:
            nonlocal current
            for pod in pods.values():
                current = pod
                if pod_ended(pod):
                    raise ActivityFailed(self._ended_early(pod))
                state = container_state(pod)
                if state is not None and state.waiting and state.waiting.reason in FATAL_WAITING:
                    raise ActivityFailed(
                        f"k6 cannot start in {self.namespace}: {describe_pod_state(pod)}"
                    )
                if pod_running(pod):
                    return True
            self._check_progress()
            return False

        if not settled():
            for kind, obj in watch_pods(
                core, self.namespace, selector, str(listing.metadata.resource_version), deadline
            ):
                if kind == "RELIST":
                    pods = {p.metadata.name: p for p in obj}
                elif kind == "DELETED":
                    pods.pop(obj.metadata.name, None)
                else:
                    pods[obj.metadata.name] = obj
                if settled():
                    break
            else:
                self._check_progress()
                state = describe_pod_state(current) if current is not None else self._no_pod()
                raise ActivityFailed(
                    f"timed out after {self.start_timeout:g}s waiting for {self._waiting_for()} "
                    f"in namespace {self.namespace}: {state}"
                )
        assert current is not None
        self.pod = current.metadata.name
        self.started_at = time.time()
        self._wait_api(deadline)
        logger.info(
            f"K6 control: k6 runs in pod {self.namespace}/{self.pod} "
            f"(REST API through the {self.stop_route})"
        )

    def _wait_api(self, deadline: float) -> None:
        assert self.pod is not None
        api = self.api = K6RestApi(self.secrets, self.namespace, self.pod)
        last: list[str] = []

        def test_running() -> bool:
            pod = self._read_pod()
            if pod is None or pod_ended(pod):
                raise ActivityFailed(
                    self._ended_early(pod) if pod is not None else f"pod {self.pod} disappeared"
                )
            try:
                status = api.request("GET", "/v1/status")
            except ActivityFailed as exc:
                last[:] = [str(exc)]
                return False
            return bool(status.get("data", {}).get("attributes", {}).get("running"))

        try:
            wait_until(
                test_running,
                timeout=max(5.0, deadline - time.monotonic()),
                description=f"k6 in pod {self.pod} to run its test",
                max_interval=2.0,
            )
        except WaitTimeout as exc:
            raise ActivityFailed(f"{exc}" + (f": {last[0]}" if last else "")) from None
        self.stop_route = api.route

    def _read_pod(self) -> Any | None:
        """The k6 pod now, or None once it is gone."""
        core = core_v1(self.secrets)
        return api_call(
            lambda: core.read_namespaced_pod(
                self.pod, self.namespace, _request_timeout=REQUEST_TIMEOUT
            ),
            f"read pod {self.namespace}/{self.pod}",
            retry=True,
            missing_ok=True,
        )

    def _ended_early(self, pod: Any) -> str:
        tail = self._read_log(pod.metadata.name)[-1500:]
        return f"k6 ended before the experiment began: {describe_pod_state(pod)}" + (
            f". Its log ends with:\n{tail}" if tail else ""
        )

    def _read_log(self, pod: str) -> str:
        core = core_v1(self.secrets)
        try:
            text = core.read_namespaced_pod_log(
                pod,
                self.namespace,
                container=CONTAINER,
                tail_lines=LOG_TAIL_LINES,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            self.problems.append(f"the log of pod {pod} cannot be read: {api_message(exc)}")
            return ""
        except Exception as exc:  # the kubelet may be unreachable
            self.problems.append(f"the log of pod {pod} cannot be read: {exc}")
            return ""
        return str(text or "")

    def _read_complete_log(self, pod: str) -> str:
        """The pod's log once it holds k6's summary: the runtime writes a
        container's log on its own, so its last lines can arrive after the
        container is reported terminated. Re-read for up to LOG_SETTLE_S."""
        latest = [self._read_log(pod)]

        def complete() -> bool:
            if summary_from_log(latest[0]) is None:
                latest[0] = self._read_log(pod)
            return summary_from_log(latest[0]) is not None

        with contextlib.suppress(WaitTimeout):
            wait_until(complete, timeout=LOG_SETTLE_S, description="the k6 summary in the log")
        return latest[0]

    def stop(self) -> int | None:
        """Stop k6 through its REST API (it still prints its summary), wait
        for the pod to end (up to ``stop_timeout``), and read the log."""
        if self.pod is None:
            return None
        pod = self._read_pod()
        if pod is not None and not pod_ended(pod):
            api = self.api if self.api and self.api.pod == self.pod else None
            api = api or K6RestApi(self.secrets, self.namespace, self.pod)
            try:
                api.request("PATCH", "/v1/status", STOP_BODY)
                self.stop_route = api.route
            except ActivityFailed as exc:
                self.problems.append(f"k6 could not be stopped: {exc}")
            else:
                latest: list[Any] = [pod]

                def ended() -> bool:
                    latest[0] = self._read_pod()
                    return latest[0] is None or pod_ended(latest[0])

                try:
                    wait_until(
                        ended,
                        timeout=self.stop_timeout,
                        description=f"pod {self.pod} to end after k6 was stopped",
                        max_interval=1.0,
                    )
                except WaitTimeout as exc:
                    self.problems.append(str(exc))
                pod = latest[0]
        self.ended_at = time.time()
        if pod is not None:
            self.exit_code = exit_code(pod)
            self.log = self._read_complete_log(self.pod)
        else:
            self.problems.append(f"pod {self.pod} was gone before its log could be read")
        return self.exit_code

    def result(self) -> dict[str, Any]:
        """The run's results, in the same shape as a local run's (call after stop())."""
        summary = summary_from_log(self.log)
        result = k6_result(
            self.mode,
            self.exit_code,
            summary,
            None,
            self.started_at,
            self.ended_at,
            self.log[-3000:],
        )
        result.update({"namespace": self.namespace, "pod": self.pod, "api_route": self.stop_route})
        if summary is None:
            self.problems.append(
                f"the log of pod {self.pod} has no k6 summary between the marker lines: k6 did "
                "not finish normally, or the script's handleSummary does not print it "
                "(SUMMARY_STDOUT=true)"
            )
        if self.problems:
            result["error"] = "; ".join(self.problems)
            if result.get("status") == "passed":
                result["status"] = "error"  # a problem is never a pass
        return result

    def delete(self, timeout: float = 60.0) -> None:
        """Delete the workload (its pods go with it) and the ConfigMap, and
        wait (up to ``timeout``) until the pods are gone. Never raises."""
        if self._deleted:
            return
        core = core_v1(self.secrets)
        had_objects = bool(self.created)
        left: list[tuple[str, str]] = []
        for kind, name in reversed(self.created):
            try:
                if kind == "ConfigMap":
                    core.delete_namespaced_config_map(
                        name, self.namespace, _request_timeout=REQUEST_TIMEOUT
                    )
                else:
                    self._delete_workload()
            except Exception as exc:
                if not _not_found(exc):
                    logger.error(
                        f"K6 control: could not delete {kind} {self.namespace}/{name}: {exc}; "
                        f"delete it with: kubectl delete -n {self.namespace} {kind.lower()} {name}"
                    )
                    left.insert(0, (kind, name))
                    continue
            logger.debug(f"K6 control: deleted {kind} {self.namespace}/{name}")
        self.created = left
        if left:
            return  # still registered: cleanup_control tries again
        self._deleted = True
        with _running_lock:
            _running.discard(self)
        if not had_objects:
            return
        selector = f"{RUN_LABEL}={self.run_id}"
        try:
            wait_until(
                lambda: (
                    not core.list_namespaced_pod(
                        self.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
                    ).items
                ),
                timeout=timeout,
                description=f"the pods of k6 run {self.run_id} to be gone",
                ignore=(ApiException,),
            )
        except WaitTimeout as exc:
            logger.warning(f"K6 control: {exc}")


class JobK6(ClusterK6):
    """k6 as a Kubernetes Job (``mode: job``)."""

    mode = "job"

    def job(self) -> dict[str, Any]:
        deadline = int(duration_seconds(self.env.get("DURATION", "1h"))) + DEADLINE_MARGIN_S
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": CONTAINER,
                    "image": self.image,
                    "command": list(K6_COMMAND),
                    "env": self.env_list(),
                    "ports": [{"name": "rest-api", "containerPort": API_PORT}],
                    "volumeMounts": [{"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True}],
                }
            ],
            "volumes": [{"name": "script", "configMap": {"name": self.name}}],
        }
        if self.node_selector:
            pod_spec["nodeSelector"] = self.node_selector
        template_meta: dict[str, Any] = {"labels": self.labels}
        if self.pod_annotations:
            template_meta["annotations"] = self.pod_annotations
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": deadline,
                "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
                "template": {"metadata": template_meta, "spec": pod_spec},
            },
        }

    def _create_workload(self) -> dict[str, Any]:
        batch = batch_v1(self.secrets)
        created = api_call(
            lambda: batch.create_namespaced_job(
                self.namespace, self.job(), _request_timeout=REQUEST_TIMEOUT
            ),
            f"create Job {self.namespace}/{self.name}",
        )
        self.created.append(("Job", self.name))
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "uid": created.metadata.uid},
        }

    def _delete_workload(self) -> None:
        batch_v1(self.secrets).delete_namespaced_job(
            self.name,
            self.namespace,
            propagation_policy="Background",
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _pod_selector(self) -> str:
        return f"{RUN_LABEL}={self.run_id}"

    def _check_progress(self) -> None:
        batch = batch_v1(self.secrets)
        job = read(
            lambda: batch.read_namespaced_job(
                self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT
            ),
            f"read Job {self.namespace}/{self.name}",
        )
        for cond in (job.status.conditions if job.status else None) or []:
            if cond.type == "Failed" and cond.status == "True":
                raise ActivityFailed(
                    f"Job {self.namespace}/{self.name} failed before k6 ran: "
                    f"{cond.reason}: {cond.message}"
                )

    def _no_pod(self) -> str:
        core = core_v1(self.secrets)
        events = read(
            lambda: core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.kind=Job,involvedObject.name={self.name}",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            f"list the events of Job {self.namespace}/{self.name}",
        ).items
        warnings = [e.message for e in events if e.type == "Warning" and e.message]
        return "no pod was created for it" + (f" ({warnings[-1]})" if warnings else "")


class TestRunK6(ClusterK6):
    """k6 under the k6-operator, as a TestRun (``mode: operator``)."""

    mode = "operator"
    __test__ = False  # not a pytest test class, whatever its name

    def testrun(self) -> dict[str, Any]:
        runner: dict[str, Any] = {
            "image": self.image,
            "env": self.env_list(),
            "metadata": {"labels": self.labels},
        }
        if self.pod_annotations:
            runner["metadata"]["annotations"] = self.pod_annotations
        if self.node_selector:
            runner["nodeSelector"] = self.node_selector
        return {
            "apiVersion": f"{TESTRUN_API[0]}/{TESTRUN_API[1]}",
            "kind": "TestRun",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {
                "parallelism": 1,
                "script": {"configMap": {"name": self.name, "file": SCRIPT_KEY}},
                "arguments": "--no-color",
                "runner": runner,
            },
        }

    def create(self) -> None:
        require_testrun_crd(self.namespace, self.secrets)
        super().create()

    def _create_workload(self) -> dict[str, Any]:
        group, version, plural = TESTRUN_API
        api = custom_objects(self.secrets)
        created = api_call(
            lambda: api.create_namespaced_custom_object(
                group,
                version,
                self.namespace,
                plural,
                self.testrun(),
                _request_timeout=REQUEST_TIMEOUT,
            ),
            f"create TestRun {self.namespace}/{self.name}",
        )
        self.created.append(("TestRun", self.name))
        return {
            "apiVersion": f"{group}/{version}",
            "kind": "TestRun",
            "metadata": {"name": self.name, "uid": created["metadata"]["uid"]},
        }

    def _delete_workload(self) -> None:
        group, version, plural = TESTRUN_API
        custom_objects(self.secrets).delete_namespaced_custom_object(
            group,
            version,
            self.namespace,
            plural,
            self.name,
            propagation_policy="Background",
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _pod_selector(self) -> str:
        return f"k6_cr={self.name},runner=true"

    def _stage(self) -> tuple[str, list[Any]]:
        group, version, plural = TESTRUN_API
        api = custom_objects(self.secrets)
        obj = read(
            lambda: api.get_namespaced_custom_object(
                group, version, self.namespace, plural, self.name, _request_timeout=REQUEST_TIMEOUT
            ),
            f"read TestRun {self.namespace}/{self.name}",
        )
        status = obj.get("status") or {}
        return str(status.get("stage") or ""), list(status.get("conditions") or [])

    def _check_progress(self) -> None:
        stage, conditions = self._stage()
        if stage in ("error", "finished", "stopped"):
            detail = "; ".join(
                f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
                for c in conditions
            )
            raise ActivityFailed(
                f"TestRun {self.namespace}/{self.name} is at stage {stage!r} before the "
                f"experiment began" + (f": {detail}" if detail else "")
            )

    def _waiting_for(self) -> str:
        try:
            stage, _ = self._stage()
        except ActivityFailed:
            stage = "unknown"
        return (
            f"the runner pod of TestRun {self.name} (stage {stage or 'not set'}: is the "
            "k6-operator running and watching this namespace?)"
        )
