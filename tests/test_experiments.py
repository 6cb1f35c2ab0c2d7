"""The experiments themselves, end to end with the real `chaos run`, against
the test cluster (real API server, controllers, KubeRay) and real local
servers for the data plane, with short timings given through --var-file.
Each scenario has a passing run and a deliberately failing one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaosray.wait import wait_until
from tests.chaos_cli import ChaosRun, chaos_report, pdf_text, run_experiment, validate_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, WORKERS, KubeCluster, ready_pods

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
NAMES = [
    "pre-validation",
    "worker-delete",
    "node-drain",
    "sequential-worker-delete",
    "redis-delete",
    "head-delete",
    "post-validation",
]
FAST: dict[str, Any] = {
    "baseline_s": 1.0,
    "observe_s": 2.0,
    "replacement_timeout_s": 30.0,
    "sequence_interval_s": 2.0,
    "drain_timeout_s": 30.0,
    "load_rate": 10,
    "monitor_rate": 10.0,
    # The test cluster's Redis pods are kwok's: no Redis to ask for the
    # primary (tests/test_redis.py runs redis_primary_node on real Redis).
    "redis_mode": "none",
}


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EXPERIMENTS / f"{name}.json").read_text()))


def _run(
    name: str,
    cluster: KubeCluster,
    server: ScheduledServer,
    tmp_path: Path,
    **overrides: Any,
) -> ChaosRun:
    var_file = tmp_path / "vars.json"
    configuration = {**FAST, "inference_url": server.url, "health_path": "/-/healthz", **overrides}
    var_file.write_text(json.dumps({"configuration": configuration}))
    return run_experiment(
        _load(name),
        tmp_path,
        extra_args=("--var-file", str(var_file)),
        env={"KUBECONFIG": str(cluster.kubeconfig)},
        timeout=300,
    )


def _assert_pdf_report(tmp_path: Path, title: str, k6: bool = False) -> None:
    """`chaos report` turns the experiment's fresh journal into a PDF (our
    hypotheses keep to one "$" per table, which its LaTeX template needs)."""
    out = tmp_path / "report.pdf"
    done = chaos_report(tmp_path / "journal.json", out, "pdf")
    assert done.returncode == 0, done.stdout + done.stderr
    text = pdf_text(out)
    assert title in text
    assert ("Probe - k6-load" in text) is k6


def _verdict(run: ChaosRun) -> dict[str, Any]:
    return dict(run.journal["chaosray"]["verdict"])


@pytest.fixture
def pdb_removed(topology: KubeCluster) -> Iterator[None]:
    policy = client.PolicyV1Api(topology.api())
    saved = policy.read_namespaced_pod_disruption_budget("ray-worker-pdb", NAMESPACE)
    policy.delete_namespaced_pod_disruption_budget("ray-worker-pdb", NAMESPACE)
    try:
        yield
    finally:
        saved.metadata = client.V1ObjectMeta(name="ray-worker-pdb", namespace=NAMESPACE)
        saved.status = None
        policy.create_namespaced_pod_disruption_budget(NAMESPACE, saved)


def _cordon_all(core: client.CoreV1Api) -> None:
    for node in core.list_node().items:
        core.patch_node(node.metadata.name, {"spec": {"unschedulable": True}})


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_validates(name: str, tmp_path: Path) -> None:
    done = validate_experiment(_load(name), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    experiment = _load(name)
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    modules = [c["provider"]["module"] for c in experiment["controls"]]
    # The settings check first: nothing may start before it has looked.
    if name not in ("pre-validation", "post-validation"):
        assert modules == [
            "chaosray.guard", "chaosray.load.control", "chaosray.k8s.control", "chaosray.verdict",
        ]  # fmt: skip
    else:
        assert modules == ["chaosray.guard", "chaosray.verdict"]
    # The safety settings reach the actions only if declared: the context
    # allow-list and the dry run everywhere (the settings check reads them),
    # the pod limit where an action deletes or evicts several pods.
    declared = experiment["configuration"]
    for key in ("chaosray_allowed_contexts", "chaosray_dry_run"):
        assert declared[key]["type"] == "env"
    funcs = {a["provider"].get("func") for a in experiment["method"]}
    if funcs & {"delete_pods_sequentially", "drain_node"}:
        assert declared["chaosray_max_pods_per_action"]["type"] == "env"
    else:
        assert "chaosray_max_pods_per_action" not in declared


# --- pre-validation -------------------------------------------------------------------------


def test_pre_validation_passes_on_the_reference_topology(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    run = _run("pre-validation", topology, scheduled_server, tmp_path)
    assert run.returncode == 0, run.console
    verdict = _verdict(run)
    assert (verdict["passed"], verdict["reasons"]) == (True, [])
    # The table in the journal: each hypothesis probe held (nothing else ran).
    assert {c["state"] for c in verdict["criteria"]} == {"held"}
    assert "before:ray-workers-ready" in {c["id"] for c in verdict["criteria"]}
    probes = {p["activity"]["name"]: p for p in run.journal["steady_states"]["before"]["probes"]}
    assert probes["ray-workers-ready"]["output"] == 3
    assert run.run_entry("workers-on-distinct-nodes")["output"]["distinct"] is True
    assert run.run_entry("endpoint-healthy")["output"]["healthy"] is True
    assert run.run_entry("nlb-provisioned")["output"]["host"] == "127.0.0.1"
    _assert_pdf_report(tmp_path, "Pre-validation")


def test_pre_validation_fails_without_the_worker_pdb(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path, pdb_removed: None
) -> None:
    run = _run("pre-validation", topology, scheduled_server, tmp_path)
    assert run.returncode == 1
    verdict = _verdict(run)
    assert verdict["passed"] is False
    assert "worker-pdb-min-available" in verdict["reasons"][0]


# --- worker delete --------------------------------------------------------------------------


def test_worker_delete_passes_and_records_everything(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = {p.metadata.name for p in ready_pods(topology.core(), WORKERS)}
    run = _run("worker-delete", topology, scheduled_server, tmp_path)
    assert run.returncode == 0, run.console
    assert _verdict(run)["passed"] is True, _verdict(run)
    step = run.run_entry("delete-one-worker-and-watch")["output"]["steps"][0]
    assert step["pod"] in before and step["min_ready_seen"] >= 2
    recovery = run.run_entry("replacement-ready")["output"]
    assert recovery["since_source"] == f"delete of pod {step['pod']}"
    monitor = run.run_entry("availability-monitor")["output"]
    # Measured until the method's last step, at least baseline_s + observe_s (3 s).
    assert monitor["ended_by"] == "stop_action"
    assert monitor["ended_at"] - monitor["started_at"] >= FAST["baseline_s"] + FAST["observe_s"]
    assert monitor["success_rate"] == 1.0 and monitor["requests"] >= 29
    assert run.journal["chaosray"]["k6"]["status"] == "passed"
    events = run.journal["chaosray"]["timeline"]["events"]
    assert any(e["pod"] == step["pod"] and e["event"] == "gone" for e in events)


def test_worker_delete_fails_when_the_replacement_never_becomes_ready(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    _cordon_all(topology.core())
    run = _run("worker-delete", topology, scheduled_server, tmp_path, replacement_timeout_s=3.0)
    assert run.returncode == 1
    reasons = " ".join(_verdict(run)["reasons"])
    assert "replacement-ready failed" in reasons and "only 2 of 3" in reasons


def test_worker_delete_fails_on_an_outage(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    (outage,) = scheduled_server.arm([{"start": 6.0, "end": 9.0, "mode": "down"}])
    # A longer observation is measured to its end (the monitor's duration is only a cap).
    run = _run("worker-delete", topology, scheduled_server, tmp_path, observe_s=12.0)
    assert run.returncode == 1
    reasons = " ".join(_verdict(run)["reasons"])
    assert "availability-monitor: success rate" in reasons
    monitor = run.run_entry("availability-monitor")["output"]
    assert monitor["started_at"] < outage.start and monitor["ended_at"] > outage.end
    assert monitor["total_downtime_s"] == pytest.approx(outage.duration, abs=0.2)


# --- node drain ---------------------------------------------------------------------------


def _drain_setup(core: client.CoreV1Api) -> list[str]:
    """Cordon the nodes without a worker, so a drained worker's replacement
    waits (as it does on EKS while a new pod starts); return them."""
    used = {p.spec.node_name for p in ready_pods(core, WORKERS)}
    free = [n.metadata.name for n in core.list_node().items if n.metadata.name not in used]
    for name in free:
        core.patch_node(name, {"spec": {"unschedulable": True}})
    return free


def _uncordon_later(
    core: client.CoreV1Api,
    nodes: list[str],
    after: float,
    once: Callable[[], bool] | None = None,
) -> threading.Thread:
    """Uncordon ``nodes`` ``after`` seconds (from ``once`` holding, when given)."""

    def run() -> None:
        if once is not None:
            wait_until(once, timeout=120, interval=0.2, description="the moment to uncordon")
        time.sleep(after)
        for name in nodes:
            core.patch_node(name, {"spec": {"unschedulable": None}})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_node_drain_respects_the_pdb_and_uncordons(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    core = topology.core()
    free = _drain_setup(core)
    helper = _uncordon_later(core, free, after=8)
    run = _run("node-drain", topology, scheduled_server, tmp_path)
    helper.join()
    assert run.returncode == 0, run.console + json.dumps(_verdict(run))
    drain = run.run_entry("drain-a-worker-node")["output"]
    assert any("workers-worker" in p["pod"] for p in drain["pods"])
    assert all(p["terminated_s"] is not None and p["terminated_s"] < 60 for p in drain["pods"])
    assert run.run_entry("pdb-refuses-a-second-disruption")["output"]["refused"] is True
    assert not core.read_node(drain["node"]).spec.unschedulable
    _assert_pdf_report(tmp_path, "Node drain", k6=True)


@pytest.mark.parametrize("presses", [2, 3])
def test_ctrl_c_pressed_again_still_uncordons_stops_the_load_and_writes_the_journal(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path, presses: int
) -> None:
    core = topology.core()
    _drain_setup(core)  # the drained worker's replacement waits: the drain's node stays cordoned
    var_file = tmp_path / "vars.json"
    var_file.write_text(
        json.dumps({"configuration": {**FAST, "inference_url": scheduled_server.url}})
    )
    run = run_experiment(
        _load("node-drain"), tmp_path,
        extra_args=("--var-file", str(var_file)),
        env={"KUBECONFIG": str(topology.kubeconfig)},
        interrupt_after=8, interrupts=presses, interrupt_spacing=0.3,
    )  # fmt: skip
    assert run.journal, f"no journal: {run.console}"
    assert run.journal["status"] == "interrupted"
    assert "Aborted!" not in run.console
    assert "again: stopping the load and uncordoning" in run.log
    assert not core.list_node(label_selector="chaosray.io/cordoned").items
    drain = run.run_entry("drain-a-worker-node")
    assert not core.read_node(drain["output"]["node"]).spec.unschedulable
    assert run.journal["rollbacks"], "the rollbacks ran and are in the journal"
    served = len(scheduled_server.served())
    time.sleep(1.5)
    assert len(scheduled_server.served()) == served  # no load left running
    assert chaos_report(tmp_path / "journal.json", tmp_path / "r.html", "html5").returncode == 0


def test_node_drain_fails_without_a_pdb(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path, pdb_removed: None
) -> None:
    core = topology.core()
    free = _drain_setup(core)
    helper = _uncordon_later(core, free, after=8)
    run = _run("node-drain", topology, scheduled_server, tmp_path)
    helper.join()
    assert run.returncode == 1
    reasons = " ".join(_verdict(run)["reasons"])
    assert "pdb-refuses-a-second-disruption failed" in reasons
    # The rollbacks still uncordoned what the drain cordoned.
    assert not core.list_node(label_selector="chaosray.io/cordoned").items


# --- sequential ----------------------------------------------------------------------------


def test_sequential_worker_delete_replaces_every_worker(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = {p.metadata.name for p in ready_pods(topology.core(), WORKERS)}
    run = _run("sequential-worker-delete", topology, scheduled_server, tmp_path)
    assert run.returncode == 0, run.console
    steps = run.run_entry("delete-workers-one-by-one")["output"]["steps"]
    assert {s["pod"] for s in steps} == before
    assert not before & {p.metadata.name for p in ready_pods(topology.core(), WORKERS)}


def test_sequential_worker_delete_stops_below_the_minimum(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    _cordon_all(topology.core())
    run = _run(
        "sequential-worker-delete", topology, scheduled_server, tmp_path,
        replacement_timeout_s=3.0,
    )  # fmt: skip
    assert run.returncode == 1
    reasons = " ".join(_verdict(run)["reasons"])
    # No replacement can start: the second deletion is refused before it happens.
    assert "sequence stopped before step 2: deleting" in reasons
    assert "would leave 1 Ready pods" in reasons
    assert len(ready_pods(topology.core(), WORKERS)) == 2


# --- post-validation -----------------------------------------------------------------------


def test_post_validation_cleans_up_our_cordons_then_passes(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    core = topology.core()
    core.patch_node(
        "node-a",
        {"spec": {"unschedulable": True}, "metadata": {"labels": {"chaosray.io/cordoned": "true"}}},
    )
    run = _run("post-validation", topology, scheduled_server, tmp_path)
    assert run.returncode == 0, run.console
    assert run.run_entry("uncordon-nodes-chaosray-cordoned")["output"]["uncordoned"] == ["node-a"]
    probes = {p["activity"]["name"]: p for p in run.journal["steady_states"]["after"]["probes"]}
    assert probes["inference-10-of-10"]["output"]["succeeded"] == 10
    assert len(scheduled_server.served()) == 10
    _assert_pdf_report(tmp_path, "Post-validation")


K6_LABELS = {"app.kubernetes.io/managed-by": "chaosray", "app.kubernetes.io/name": "k6"}


@pytest.fixture
def load_left_behind(topology: KubeCluster) -> Iterator[dict[str, str]]:
    """What a chaos run that died left in the namespace (a load Job and its
    ConfigMap, with chaosray's labels), next to a Job and a ConfigMap of
    someone else's: ``{"ours": name, "theirs": name}``."""
    api = topology.api()
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    names = {"ours": "k6-left-by-a-dead-chaos", "theirs": "someone-elses-k6"}
    for key, name in names.items():
        labels = {**K6_LABELS, "chaosray.io/k6-run": "dead"} if key == "ours" else {"app": "k6"}
        meta = client.V1ObjectMeta(name=name, labels=labels)
        pod = client.V1PodSpec(
            restart_policy="Never", containers=[client.V1Container(name="k6", image="grafana/k6")]
        )
        spec = client.V1JobSpec(suspend=True, template=client.V1PodTemplateSpec(spec=pod))
        batch.create_namespaced_job(NAMESPACE, client.V1Job(metadata=meta, spec=spec))
        core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(metadata=meta))
    yield names
    for name in names.values():
        for delete in (batch.delete_namespaced_job, core.delete_namespaced_config_map):
            try:
                delete(name, NAMESPACE, propagation_policy="Background")
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


def _jobs_and_maps(cluster: KubeCluster) -> tuple[set[str], set[str]]:
    api = cluster.api()
    jobs = client.BatchV1Api(api).list_namespaced_job(NAMESPACE).items
    maps = client.CoreV1Api(api).list_namespaced_config_map(NAMESPACE).items
    return {j.metadata.name for j in jobs}, {m.metadata.name for m in maps}


def test_post_validation_deletes_the_load_chaosray_left_and_nothing_else(
    topology: KubeCluster,
    scheduled_server: ScheduledServer,
    load_left_behind: dict[str, str],
    tmp_path: Path,
) -> None:
    run = _run("post-validation", topology, scheduled_server, tmp_path)
    assert run.returncode == 0, run.console
    ours, theirs = load_left_behind["ours"], load_left_behind["theirs"]
    output = run.run_entry("delete-k6-load-left-by-chaosray")["output"]
    assert output["jobs"] == output["configmaps"] == [f"{NAMESPACE}/{ours}"]
    assert output["left"] == {"jobs": [], "testruns": [], "configmaps": []}
    jobs, maps = _jobs_and_maps(topology)
    assert ours not in jobs and ours not in maps
    assert theirs in jobs and theirs in maps


def test_post_validation_fails_naming_the_load_it_could_not_delete(
    topology: KubeCluster,
    scheduled_server: ScheduledServer,
    load_left_behind: dict[str, str],
    tmp_path: Path,
) -> None:
    run = _run("post-validation", topology, scheduled_server, tmp_path, chaosray_dry_run="true")
    assert run.returncode == 1
    ours = f"{NAMESPACE}/{load_left_behind['ours']}"
    assert (
        f"delete-k6-load-left-by-chaosray failed: chaosray's load is still in namespace "
        f"{NAMESPACE}: Job {ours}, ConfigMap {ours} (dry run: nothing was deleted)"
    ) in " ".join(_verdict(run)["reasons"])
    jobs, maps = _jobs_and_maps(topology)
    assert load_left_behind["ours"] in jobs and load_left_behind["ours"] in maps


def test_post_validation_fails_when_a_worker_is_missing(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    core = topology.core()
    _cordon_all(core)
    victim = ready_pods(core, WORKERS)[0].metadata.name
    core.delete_namespaced_pod(victim, NAMESPACE)
    wait_until(lambda: len(ready_pods(core, WORKERS)) == 2, timeout=20, description="2 workers")
    run = _run("post-validation", topology, scheduled_server, tmp_path)
    assert run.returncode == 1
    assert "ray-workers-ready (got 2)" in " ".join(_verdict(run)["reasons"])
