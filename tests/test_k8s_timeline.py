"""The pod timeline control under the real `chaos run`, on the test cluster."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tests.chaos_cli import run_experiment, validate_experiment
from tests.rig.kube import NAMESPACE, REDIS, WORKERS, KubeCluster

SERVICE = "ray-serve-nlb"  # deploy/base's LoadBalancer Service (workers only)
NODE = "node-d"


def _experiment(method: list[dict[str, Any]], selectors: Any, **watch: Any) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "title": "pod timeline under test",
        "description": "record pods while one is deleted",
        "controls": [
            {
                "name": "pod-timeline",
                "provider": {
                    "type": "python",
                    "module": "chaosray.k8s.control",
                    "arguments": {"namespace": NAMESPACE, "selectors": selectors, **watch},
                },
            }
        ],
        "method": method,
    }


def _delete_then_wait(selector: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "action",
            "name": "delete-one",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.actions",
                "func": "delete_pod",
                "arguments": {"label_selector": selector, "namespace": NAMESPACE},
            },
        },
        {
            "type": "probe",
            "name": "wait-ready",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.probes",
                "func": "wait_for_ready_pods",
                "arguments": {"label_selector": selector, "count": count, "namespace": NAMESPACE},
            },
            "pauses": {"after": 2},
        },
    ]


def test_timeline_records_a_deletion_and_its_replacement(
    topology: KubeCluster, tmp_path: Path
) -> None:
    core = topology.core()
    before = {
        p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
    }
    method = [
        *_delete_then_wait(WORKERS, 3),
        {"type": "action", "name": "cordon", "provider": {"type": "python",
         "module": "chaosray.k8s.actions", "func": "cordon_node", "arguments": {"name": NODE}}},
        {"type": "action", "name": "uncordon", "provider": {"type": "python",
         "module": "chaosray.k8s.actions", "func": "uncordon_node", "arguments": {"name": NODE}},
         "pauses": {"before": 1, "after": 1}},
    ]  # fmt: skip
    run = run_experiment(
        _experiment(method, {"workers": WORKERS, "redis": REDIS}, service=SERVICE),
        tmp_path,
        env={"KUBECONFIG": str(topology.kubeconfig)},
    )
    assert run.returncode == 0, run.console
    timeline = run.journal["chaosray"]["timeline"]
    assert timeline["errors"] == {}
    assert timeline["watched"] == ["endpoints", "nodes", "redis", "workers"]
    deleted = run.run_entry("delete-one")["output"]["pod"]
    events = timeline["events"]

    def of(pod: str, group: str = "workers") -> list[str]:
        return [e["event"] for e in events if e["pod"] == pod and e["group"] == group]

    assert of(deleted)[0] == "present"
    assert "deletion_requested" in of(deleted) and of(deleted)[-1] == "gone"
    after = {
        p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
    }
    (replacement,) = after - before
    assert of(replacement)[:3] == ["created", "scheduled", "ready"]
    presents = {e["pod"] for e in events if e["event"] == "present"}
    assert before <= presents and {"redis-0", "redis-1", "redis-2"} <= presents
    # Times are in order and the API's own deletion time precedes the gone event.
    deletion = next(e for e in events if e["pod"] == deleted and e["event"] == "deletion_requested")
    assert deletion["api_time"] is not None
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert run.run_entry("pod-timeline")["status"] == "succeeded"
    # The Service's EndpointSlices are watched; kwok's pod IPs are loopback
    # addresses, which the EndpointSlice controller never makes endpoints, so
    # what an endpoint does is checked on the lab (tests/lab).
    assert not [e for e in events if e["group"] == "endpoints"]
    # The node cordoned and uncordoned by the method, in that order.
    assert of(NODE, "nodes") == ["cordoned", "uncordoned"]


def test_timeline_survives_ctrl_c_and_stops(topology: KubeCluster, tmp_path: Path) -> None:
    method = [
        {
            "type": "action",
            "name": "long-pause",
            "provider": {"type": "process", "path": "true"},
            "pauses": {"after": 60},
        }
    ]
    run = run_experiment(
        _experiment(method, [WORKERS]),
        tmp_path,
        interrupt_after=5,
        timeout=60,
        env={"KUBECONFIG": str(topology.kubeconfig)},
    )
    assert run.journal["status"] == "interrupted"
    events = run.journal["chaosray"]["timeline"]["events"]
    assert sum(1 for e in events if e["event"] == "present") == 3


def test_bad_selectors_fail_validation(tmp_path: Path) -> None:
    done = validate_experiment(_experiment([], {"workers": ""}), tmp_path)
    assert done.returncode != 0
    assert "selector of 'workers' is empty" in done.stdout + done.stderr


def test_watches_the_role_does_not_allow_are_named_and_the_run_goes_on(
    topology: KubeCluster, tmp_path: Path
) -> None:
    """A role that may read pods but not EndpointSlices or nodes (RBAC of an
    older release, say): the pods are recorded, the other two watches are
    named in ``unwatched`` with the API server's reason, the run succeeds."""
    from kubernetes import client

    from chaosray.lab.kubeconfig import write_token_kubeconfig

    name = "chaosray-pods-only"
    core, rbac = topology.core(), client.RbacAuthorizationV1Api(topology.api())
    meta = client.V1ObjectMeta(name=name)
    core.create_namespaced_service_account(NAMESPACE, client.V1ServiceAccount(metadata=meta))
    try:
        rule = client.V1PolicyRule(api_groups=[""], resources=["pods"],
                                   verbs=["get", "list", "watch"])  # fmt: skip
        rbac.create_namespaced_role(NAMESPACE, client.V1Role(metadata=meta, rules=[rule]))
        rbac.create_namespaced_role_binding(
            NAMESPACE,
            client.V1RoleBinding(
                metadata=meta,
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                          name=name),
                subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name,
                                               namespace=NAMESPACE)],
            ),
        )  # fmt: skip
        kubeconfig = write_token_kubeconfig(
            core, topology.kubeconfig, tmp_path / "pods-only.kubeconfig", service_account=name,
            namespace=NAMESPACE, context=name, seconds=600,
        )  # fmt: skip
        method = [{"type": "probe", "name": "wait", "provider": {"type": "process",
                   "path": "true"}, "pauses": {"after": 2}}]  # fmt: skip
        run = run_experiment(
            _experiment(method, {"workers": WORKERS}, service=SERVICE),
            tmp_path,
            env={"KUBECONFIG": str(kubeconfig)},
        )
    finally:
        for delete in (rbac.delete_namespaced_role_binding, rbac.delete_namespaced_role,
                       core.delete_namespaced_service_account):  # fmt: skip
            with contextlib.suppress(client.ApiException):  # never created
                delete(name, NAMESPACE)
    assert run.returncode == 0, run.console
    timeline = run.journal["chaosray"]["timeline"]
    assert timeline["watched"] == ["workers"]
    assert sorted(timeline["unwatched"]) == ["endpoints", "nodes"]
    for reason in timeline["unwatched"].values():
        assert "forbidden" in reason.lower() and "\n" not in reason, reason
    assert sum(1 for e in timeline["events"] if e["event"] == "present") == 3
