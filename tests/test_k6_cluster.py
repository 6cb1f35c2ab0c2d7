"""The K6 control's in-cluster modes (``job``, ``operator``) on the real test
cluster, under the real ``chaos run``.

What is real here: the API server, the Job controller, the scheduler, the
garbage collector, kwok-controller serving ``pods/log`` and
``pods/portforward`` as a kubelet, and the k6 binary. kwok runs no container,
so ``tests/rig/kwok_extras.py`` runs the Job pod's own command (from its spec,
with its env and the ConfigMap's script) as a local process, serves its output
as the pod's log and forwards the pod's REST API port to it. What is not real:
the pod's network (the API server's pod proxy does not reach kwok's pod IPs, so
k6's REST API is reached through the port-forward fallback), and the
k6-operator (it is not installed; its TestRun CRD is a subset of the real
schema, see kwok_extras).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosray.load import actions as load_actions
from chaosray.load.control import _settings
from chaosray.load.k6 import default_script
from chaosray.load.k6_cluster import (
    APP_NAME,
    DEADLINE_MARGIN_S,
    MANAGED_BY,
    RUN_LABEL,
    SELECTOR,
    TTL_AFTER_FINISHED_S,
    JobK6,
    TestRunK6,
    delete_leftover_runs,
)
from chaosray.wait import wait_until
from tests.chaos_cli import ChaosRun, k6_control_experiment, run_experiment, validate_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import REPO, KubeCluster
from tests.rig.kwok_extras import (
    CONTAINER_ANNOTATION,
    LocalContainers,
    has_container_emulation,
    install_testrun_crd,
    remove_testrun_crd,
)
from tests.rig.procs import free_port

NAMESPACE = "k6-test"
RATE = 10
RUN_IN_POD = {CONTAINER_ANNOTATION: "true"}  # kwok_extras runs these pods' command

KUBE_PY_CHANGE = (
    "the test cluster's kwok does not serve pod logs and port-forwards (kwok's Logs and "
    "PortForward CRDs are missing), so no k6 can run in a pod: tests/rig/kube.py must call "
    "tests.rig.kwok_extras.write_kwokctl_config(work_dir / 'kwok') before `kwokctl create "
    "cluster` (see the kwok_extras module doc). A cluster without kwok cannot run these tests."
)


@pytest.fixture(scope="module")
def cluster(kube_cluster: KubeCluster) -> Iterator[KubeCluster]:
    """The test cluster, with a namespace of this module's own."""
    core = kube_cluster.core()

    def created() -> bool:
        try:
            core.create_namespace({"metadata": {"name": NAMESPACE}})
        except ApiException as exc:
            if exc.status != 409:
                raise
            # There already; usable unless a previous run's deletion is under way.
            return bool(core.read_namespace(NAMESPACE).status.phase == "Active")
        return True

    wait_until(created, timeout=120, description=f"namespace {NAMESPACE} to be usable")
    yield kube_cluster
    core.delete_namespace(NAMESPACE)


@pytest.fixture(autouse=True)
def _kubeconfig(cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """chaosray's client factory, in this process, talks to the test cluster."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)


@pytest.fixture
def env(cluster: KubeCluster) -> dict[str, str]:
    """The environment of `chaos run`: the test cluster's kubeconfig."""
    return {"KUBECONFIG": str(cluster.kubeconfig)}


@pytest.fixture
def containers(cluster: KubeCluster, tmp_path: Path) -> Iterator[LocalContainers]:
    if not has_container_emulation(cluster):
        pytest.fail(KUBE_PY_CHANGE)
    runtime = LocalContainers(cluster, NAMESPACE, tmp_path / "containers").start()
    yield runtime
    runtime.stop()
    assert not runtime.errors, runtime.errors
    for container in runtime.containers.values():
        assert container.process.poll() is not None, f"k6 of {container.pod} still runs"


@pytest.fixture
def testrun_crd(cluster: KubeCluster) -> Iterator[None]:
    install_testrun_crd(cluster)
    yield
    remove_testrun_crd(cluster)


def leftovers(cluster: KubeCluster) -> list[str]:
    """Every Job, ConfigMap, pod and TestRun of the K6 control in the namespace."""
    api = cluster.api()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    found = [f"job/{j.metadata.name}" for j in batch.list_namespaced_job(NAMESPACE).items]
    found += [
        f"configmap/{c.metadata.name}"
        for c in core.list_namespaced_config_map(NAMESPACE, label_selector=SELECTOR).items
    ]
    found += [f"pod/{p.metadata.name}" for p in core.list_namespaced_pod(NAMESPACE).items]
    try:
        runs = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "k6.io", "v1alpha1", NAMESPACE, "testruns"
        )
        found += [f"testrun/{r['metadata']['name']}" for r in runs["items"]]
    except ApiException as exc:
        if exc.status != 404:
            raise
    return found


@pytest.fixture(autouse=True)
def _nothing_left(cluster: KubeCluster) -> Iterator[None]:
    assert leftovers(cluster) == [], "something of the K6 control was there before the test"
    yield
    assert leftovers(cluster) == [], "the test left K6 control objects behind"


def _experiment(control_args: dict[str, Any], pause: float) -> dict[str, Any]:
    return k6_control_experiment(control_args, pause)


def _job_args(target: str, **extra: Any) -> dict[str, Any]:
    return {"mode": "job", "namespace": NAMESPACE, "target_url": target, "rate": RATE, **extra}


def _interrupted(run: ChaosRun, message: str) -> None:
    assert run.journal["status"] == "interrupted", run.log
    assert message in run.console, run.console
    assert "Traceback" not in run.console


def test_job_mode_runs_k6_in_a_pod_and_reads_its_summary_through_the_api(
    scheduled_server: ScheduledServer,
    containers: LocalContainers,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    args = _job_args(scheduled_server.url, path="/predict", pod_annotations=RUN_IN_POD)
    run = run_experiment(_experiment(args, 4), tmp_path, env=env)
    assert run.returncode == 0, run.log
    entry = run.run_entry("k6-load")
    assert entry["status"] == "succeeded", entry["output"].get("error")
    result = run.journal["chaosray"]["k6"]
    assert result == entry["output"]
    assert result["mode"] == "job" and result["status"] == "passed", result
    # k6 was stopped through its REST API (via the API server), and the exit
    # code came from the pod's status.
    assert result["exit_code"] == 103 and "REST API" in result["exit_reason"]
    assert result["api_route"] == "port-forward"  # the pod proxy does not reach kwok's pod IPs
    assert result["namespace"] == NAMESPACE and result["pod"].startswith("chaosray-k6-")
    # The figures are the summary k6 printed in the pod's log, read through the API.
    served = [r for r in scheduled_server.served() if r["path"] == "/predict"]
    assert result["requests"] == len(served) - 1  # the preflight request plus k6's
    assert result["requests"] >= 3 * RATE
    assert result["success_rate"] == 1.0
    assert result["latency_ms"]["p50"] > 0
    assert result["thresholds"] == {"http_req_failed: rate<0.05": True}
    # The pod ran what the Job said: the ConfigMap's script, every parameter as env.
    (container,) = containers.containers.values()
    assert container.pod == result["pod"]
    assert container.files == {"/scripts/load.js": default_script().read_text()}
    assert container.env["TARGET_URL"] == scheduled_server.url
    assert container.env["TARGET_PATH"] == "/predict"
    assert container.env["RATE"] == str(RATE)
    assert container.env["SUMMARY_STDOUT"] == "true" and container.env["SUMMARY_PATH"] == ""
    assert container.exit_code == 103


def test_the_job_and_configmap_have_the_expected_spec(cluster: KubeCluster) -> None:
    settings = _settings(target_url="http://inference.example:8000", rate=25, duration="90s")
    run = JobK6(
        settings["env"],
        namespace=NAMESPACE,
        image="registry.example/k6:1.1.0",
        node_selector={"pool": "load"},
        pod_annotations={"sidecar.istio.io/inject": "false"},
    )
    api = cluster.api()
    try:
        run.create()
        job = client.BatchV1Api(api).read_namespaced_job(run.name, NAMESPACE)
        config_map = client.CoreV1Api(api).read_namespaced_config_map(run.name, NAMESPACE)
    finally:
        run.delete()
    labels = {
        "app.kubernetes.io/managed-by": "chaosray",
        "app.kubernetes.io/name": "k6",
        RUN_LABEL: run.run_id,
    }
    assert run.name == f"chaosray-k6-{run.run_id}"
    assert job.metadata.labels == labels
    assert job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 90 + DEADLINE_MARGIN_S
    assert job.spec.ttl_seconds_after_finished == TTL_AFTER_FINISHED_S
    template = job.spec.template
    assert labels.items() <= template.metadata.labels.items()
    assert template.metadata.annotations == {"sidecar.istio.io/inject": "false"}
    assert template.spec.restart_policy == "Never"
    assert template.spec.node_selector == {"pool": "load"}
    (container,) = template.spec.containers
    assert container.image == "registry.example/k6:1.1.0"
    assert container.command[:4] == ["k6", "run", "--address", "0.0.0.0:6565"]
    assert container.command[-1] == "/scripts/load.js"
    assert [p.container_port for p in container.ports] == [6565]
    env = {e.name: e.value or "" for e in container.env}  # the API drops empty values
    assert env == {
        **settings["env"],
        "SUMMARY_STDOUT": "true",
        "SUMMARY_PATH": "",
        "K6_NO_USAGE_REPORT": "true",
    }
    assert env["TARGET_URL"] == "http://inference.example:8000" and env["RATE"] == "25"
    (mount,) = container.volume_mounts
    (volume,) = template.spec.volumes
    assert (mount.mount_path, volume.config_map.name) == ("/scripts", run.name)
    assert config_map.data == {"load.js": default_script().read_text()}
    assert config_map.metadata.labels == labels
    (owner,) = config_map.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Job", run.name, job.metadata.uid)


def test_a_pod_that_never_runs_fails_clearly_and_leaves_nothing(
    scheduled_server: ScheduledServer, env: dict[str, str], tmp_path: Path
) -> None:
    args = _job_args(
        scheduled_server.url, node_selector={"chaosray.test/no-such-node": "x"}, start_timeout=5
    )
    run = run_experiment(_experiment(args, 1), tmp_path, env=env)
    _interrupted(run, "timed out after 5s waiting for the k6 pod to run")
    assert "not scheduled (Unschedulable" in run.console
    assert "didn't match Pod's node affinity/selector" in run.console


def test_k6_ending_at_once_fails_clearly_and_leaves_nothing(
    scheduled_server: ScheduledServer, env: dict[str, str], tmp_path: Path
) -> None:
    # Without the rig's annotation kwok completes a Job's pod as soon as it
    # runs, as a k6 that exits at once would.
    run = run_experiment(_experiment(_job_args(scheduled_server.url), 1), tmp_path, env=env)
    _interrupted(run, "k6 ended before the experiment began")
    assert "k6 exited with code 0" in run.console


def test_unreachable_target_interrupts_and_creates_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = run_experiment(_experiment(_job_args(url), 1), tmp_path, env=env)
    _interrupted(run, f"k6 target {url}/ does not answer: connection error")


def test_unreachable_in_cluster_target_is_checked_through_the_api_server(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = "http://no-such-service.k6-test.svc:8000"
    run = run_experiment(_experiment(_job_args(url), 1), tmp_path, env=env)
    _interrupted(run, f"k6 target {url}/ does not answer through the API server's service proxy")


def test_bad_rate_is_refused_and_creates_nothing(
    scheduled_server: ScheduledServer, env: dict[str, str], tmp_path: Path
) -> None:
    # Caught when chaos validates the experiment, before anything runs...
    bad = _experiment(_job_args(scheduled_server.url, rate=0), 1)
    run = run_experiment(bad, tmp_path, env=env)
    assert run.returncode != 0 and run.journal.get("status") != "completed"
    assert "rate must be a whole number of requests/s" in run.console
    # ...or, when the value comes from the configuration, when the control starts.
    late = _experiment(_job_args(scheduled_server.url, rate="${rate}"), 1)
    late["configuration"] = {"rate": 0}
    run = run_experiment(late, tmp_path, env=env)
    _interrupted(run, "rate must be a whole number of requests/s in 1..10000, got 0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"rate": 0}, "rate must be"),
        ({"mode": "cluster"}, "mode 'cluster' is not one of local, job, operator"),
        ({"namespace": "Load_Test"}, "namespace 'Load_Test' is not a valid Kubernetes namespace"),
        ({"namespace": "x" * 64}, "is not a valid Kubernetes namespace"),
        ({"image": "grafana/k6 1.1"}, "is not a container image reference"),
        ({"node_selector": ["pool=load"]}, "node_selector must be an object of strings"),
        ({"pod_annotations": {"bad key!": "x"}}, "is not a valid Kubernetes label/annotation key"),
        ({"start_timeout": 0}, "start_timeout must be a number of seconds"),
    ],
)
def test_bad_arguments_fail_chaos_validate(
    tmp_path: Path, args: dict[str, Any], message: str
) -> None:
    control = {**_job_args("http://127.0.0.1:1"), **args}
    done = validate_experiment(_experiment(control, 1), tmp_path)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_good_job_arguments_pass_chaos_validate(tmp_path: Path) -> None:
    control = _job_args(
        "http://ray-serve-nlb.ray-serve.svc:80",
        image="grafana/k6:1.1.0",
        node_selector={"kubernetes.io/os": "linux"},
        pod_annotations={"sidecar.istio.io/inject": "false"},
        start_timeout=300,
    )
    done = validate_experiment(_experiment(control, 1), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ctrl_c_stops_the_load_and_deletes_the_job(
    scheduled_server: ScheduledServer,
    containers: LocalContainers,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    args = _job_args(scheduled_server.url, pod_annotations=RUN_IN_POD)
    run = run_experiment(_experiment(args, 60), tmp_path, env=env, interrupt_after=10)
    assert run.journal["status"] == "interrupted", run.log
    result = run.journal["chaosray"]["k6"]
    assert result["mode"] == "job" and result.get("requests", 0) > 0, result.get("error")
    (container,) = containers.containers.values()
    assert container.exit_code == 103  # stopped through its REST API, not killed
    served = len(scheduled_server.served())
    assert served >= result["requests"]


def test_ctrl_c_while_waiting_for_the_pod_deletes_what_was_created(
    scheduled_server: ScheduledServer, env: dict[str, str], tmp_path: Path
) -> None:
    args = _job_args(
        scheduled_server.url, node_selector={"chaosray.test/no-such-node": "x"}, start_timeout=120
    )
    run = run_experiment(_experiment(args, 1), tmp_path, env=env, interrupt_after=6)
    assert run.journal.get("status") != "completed", run.log
    assert "Traceback" not in run.console
    # The Job was there when Ctrl-C came, and the control deleted it (the
    # autouse fixture asserts that no Job, ConfigMap or pod is left).
    assert f"K6 control: deleted Job {NAMESPACE}/chaosray-k6-" in run.log


def test_a_missing_summary_is_a_clear_failed_entry(
    scheduled_server: ScheduledServer,
    containers: LocalContainers,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    script = tmp_path / "no-summary.js"
    script.write_text(
        "import http from 'k6/http';\n"
        "export const options = {scenarios: {s: {executor: 'constant-arrival-rate', rate: 5,\n"
        "  timeUnit: '1s', duration: '1h', preAllocatedVUs: 5}}};\n"
        "export default function () { http.get(__ENV.TARGET_URL); }\n"
    )
    args = _job_args(scheduled_server.url, pod_annotations=RUN_IN_POD, script=str(script))
    run = run_experiment(_experiment(args, 3), tmp_path, env=env)
    entry = run.run_entry("k6-load")
    assert entry["status"] == "failed"
    result = entry["output"]
    assert result["status"] == "error" and result["exit_code"] == 103
    assert "has no k6 summary between the marker lines" in result["error"]
    assert "has no k6 summary" in entry["exception"][0]
    assert "SUMMARY-BEGIN" not in result["log_tail"]


def test_operator_mode_without_the_crd_is_a_clear_error(
    scheduled_server: ScheduledServer, env: dict[str, str], tmp_path: Path
) -> None:
    args = {**_job_args(scheduled_server.url), "mode": "operator"}
    run = run_experiment(_experiment(args, 1), tmp_path, env=env)
    _interrupted(run, "k6-operator is not installed: the TestRun CRD testruns.k6.io is missing")


def test_operator_mode_creates_a_testrun_and_always_deletes_it(
    cluster: KubeCluster,
    testrun_crd: None,
    scheduled_server: ScheduledServer,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    settings = _settings(target_url=scheduled_server.url, rate=RATE)
    run = TestRunK6(
        settings["env"],
        namespace=NAMESPACE,
        node_selector={"pool": "load"},
        pod_annotations={"a.example/b": "c"},
    )
    api = cluster.api()
    try:
        run.create()
        testrun = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "k6.io", "v1alpha1", NAMESPACE, "testruns", run.name
        )
        config_map = client.CoreV1Api(api).read_namespaced_config_map(run.name, NAMESPACE)
    finally:
        run.delete()
    # Every field survived the CRD's schema (unknown fields would be pruned).
    sent = run.testrun()["spec"]
    assert {key: testrun["spec"][key] for key in sent} == sent
    assert testrun["spec"]["script"] == {"configMap": {"name": run.name, "file": "load.js"}}
    runner = testrun["spec"]["runner"]
    assert {e["name"]: e["value"] for e in runner["env"]}["SUMMARY_STDOUT"] == "true"
    assert runner["metadata"]["labels"][RUN_LABEL] == run.run_id
    assert config_map.data == {"load.js": default_script().read_text()}
    (owner,) = config_map.metadata.owner_references
    assert (owner.kind, owner.uid) == ("TestRun", testrun["metadata"]["uid"])
    # Under chaos run: no operator runs here, so the TestRun never starts; the
    # control says so and deletes the TestRun and ConfigMap.
    args = {**_job_args(scheduled_server.url), "mode": "operator", "start_timeout": 4}
    chaos = run_experiment(_experiment(args, 1), tmp_path, env=env)
    _interrupted(chaos, "timed out after 4s waiting for the runner pod of TestRun")
    assert "is the k6-operator running" in chaos.console


def test_delete_leftover_runs_removes_what_a_dead_chaos_left(
    cluster: KubeCluster, testrun_crd: None
) -> None:
    settings = _settings(target_url="http://127.0.0.1:1")
    job, testrun = JobK6(settings["env"], NAMESPACE), TestRunK6(settings["env"], NAMESPACE)
    job.create()
    testrun.create()
    assert len(leftovers(cluster)) >= 4  # 2 ConfigMaps, a Job (and its pod), a TestRun
    deleted = delete_leftover_runs(NAMESPACE)
    assert deleted == {
        "jobs": [f"{NAMESPACE}/{job.name}"],
        "testruns": [f"{NAMESPACE}/{testrun.name}"],
        "configmaps": sorted([f"{NAMESPACE}/{job.name}", f"{NAMESPACE}/{testrun.name}"]),
    }
    assert leftovers(cluster) == []
    job.delete()  # idempotent: everything is gone already
    testrun.delete()


def _labelled(labels: dict[str, str]) -> tuple[client.V1Job, client.V1ConfigMap]:
    """A Job (suspended: it starts no pod) and a ConfigMap with ``labels``."""
    name = "k6-" + "-".join(sorted(labels.values())).replace(".", "-")[:40]
    meta = client.V1ObjectMeta(name=name, labels=labels)
    job = client.V1Job(
        metadata=meta,
        spec=client.V1JobSpec(
            suspend=True,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="k6", image="grafana/k6")],
                )
            ),
        ),
    )
    return job, client.V1ConfigMap(metadata=meta, data={"load.js": "// left behind"})


OURS = dict([MANAGED_BY, APP_NAME, (RUN_LABEL, "dead-chaos")])
NOT_OURS = [
    {"app.kubernetes.io/name": "k6"},  # someone else's k6
    {"app.kubernetes.io/managed-by": "chaosray", "app": "kept"},  # chaosray's, not load
    {"app": "unrelated"},
]


@pytest.fixture
def planted(cluster: KubeCluster) -> Iterator[dict[str, list[str]]]:
    """A load Job and ConfigMap chaosray left behind, and Jobs and ConfigMaps
    in the same namespace that are not chaosray's load: ``{"ours": [...],
    "others": [...]}`` as ``namespace/name``."""
    api = cluster.api()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    names: dict[str, list[str]] = {"ours": [], "others": []}
    for key, labels in [("ours", OURS), *(("others", other) for other in NOT_OURS)]:
        job, config_map = _labelled(labels)
        batch.create_namespaced_job(NAMESPACE, job)
        core.create_namespaced_config_map(NAMESPACE, config_map)
        names[key].append(f"{NAMESPACE}/{job.metadata.name}")
    yield names
    for name in (n.split("/")[1] for n in names["ours"] + names["others"]):
        for delete in (batch.delete_namespaced_job, core.delete_namespaced_config_map):
            try:
                delete(name, NAMESPACE, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _present(cluster: KubeCluster) -> dict[str, set[str]]:
    api = cluster.api()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    return {
        "jobs": {
            f"{NAMESPACE}/{j.metadata.name}" for j in batch.list_namespaced_job(NAMESPACE).items
        },
        "configmaps": {
            f"{NAMESPACE}/{c.metadata.name}"
            for c in core.list_namespaced_config_map(NAMESPACE).items
        },
    }


def test_delete_k6_leftovers_deletes_only_chaosray_load_and_checks_none_is_left(
    cluster: KubeCluster, planted: dict[str, list[str]]
) -> None:
    result = load_actions.delete_k6_leftovers(NAMESPACE, fail_if_left=True)
    assert result["jobs"] == result["configmaps"] == planted["ours"]
    assert result["left"] == {"jobs": [], "testruns": [], "configmaps": []}
    assert result["dry_run"] is False
    present = _present(cluster)
    for kind in ("jobs", "configmaps"):
        assert not present[kind] & set(planted["ours"]), kind
        assert set(planted["others"]) <= present[kind], f"{kind} not ours were deleted"


def test_the_check_fails_naming_what_a_dry_run_left(
    cluster: KubeCluster, planted: dict[str, list[str]]
) -> None:
    (ours,) = planted["ours"]
    with pytest.raises(ActivityFailed) as failed:
        load_actions.delete_k6_leftovers(
            NAMESPACE, fail_if_left=True, configuration={"chaosray_dry_run": "true"}
        )
    assert str(failed.value) == (
        f"chaosray's load is still in namespace {NAMESPACE}: Job {ours}, ConfigMap {ours} "
        "(dry run: nothing was deleted)"
    )
    present = _present(cluster)
    assert ours in present["jobs"] and ours in present["configmaps"]
    # Without fail_if_left the dry run lists it and passes.
    listed = load_actions.delete_k6_leftovers(NAMESPACE, dry_run=True)
    assert listed["jobs"] == listed["left"]["jobs"] == [ours]


def test_the_check_fails_naming_a_leftover_that_cannot_be_deleted(
    cluster: KubeCluster, planted: dict[str, list[str]]
) -> None:
    (ours,) = planted["ours"]
    core = client.CoreV1Api(cluster.api())
    name = ours.split("/")[1]
    hold = {"metadata": {"finalizers": ["rig.chaosray/hold"]}}
    core.patch_namespaced_config_map(name, NAMESPACE, hold)
    try:
        with pytest.raises(ActivityFailed) as failed:
            load_actions.delete_k6_leftovers(NAMESPACE, fail_if_left=True, timeout=2)
        assert str(failed.value) == (
            f"chaosray's load is still in namespace {NAMESPACE}: ConfigMap {ours} "
            "(after waiting 2s)"
        )
        assert ours not in _present(cluster)["jobs"]  # the Job went
    finally:
        core.patch_namespaced_config_map(name, NAMESPACE, {"metadata": {"finalizers": None}})
    again = load_actions.delete_k6_leftovers(NAMESPACE, fail_if_left=True)
    assert again["configmaps"] == [] and again["left"]["configmaps"] == []


def test_the_k6_manifests_apply_and_match_the_control(
    cluster: KubeCluster, testrun_crd: None
) -> None:
    rendered = cluster.kubectl(
        "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(REPO / "k6")
    )
    docs = list(yaml.safe_load_all(rendered))
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    job = next(d for d in docs if d["kind"] == "Job")
    assert config_map["metadata"]["name"] == "chaosray-k6-script"
    assert config_map["data"] == {"load.js": default_script().read_text()}
    container = job["spec"]["template"]["spec"]["containers"][0]
    manifest_env = [e["name"] for e in container["env"]]
    control_env = JobK6(_settings(target_url="http://x")["env"]).env
    # Every parameter the control sets is an env var of the manifest, and the reverse.
    assert set(manifest_env) - {"CONTENT_TYPE"} == set(control_env)
    assert (
        container["command"]
        == JobK6({}).job()["spec"]["template"]["spec"]["containers"][0]["command"]
    )
    assert container["image"] == JobK6({}).image
    # The load goes to the port the reference Service listens on (deploy/).
    service = yaml.safe_load((REPO / "deploy" / "base" / "30-service.yaml").read_text())
    port = service["spec"]["ports"][0]["port"]
    testrun = yaml.safe_load((REPO / "k6" / "testrun.yaml").read_text())
    for env in (container["env"], testrun["spec"]["runner"]["env"]):
        target = next(e["value"] for e in env if e["name"] == "TARGET_URL")
        meta = service["metadata"]
        assert target == f"http://{meta['name']}.{meta['namespace']}.svc:{port}"
    rendered = rendered.replace("namespace: default", f"namespace: {NAMESPACE}")
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    cluster.kubectl(
        "apply", "--dry-run=server", "-n", NAMESPACE, "-f", str(REPO / "k6" / "testrun.yaml")
    )
