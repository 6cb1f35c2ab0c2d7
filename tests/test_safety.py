"""Safety settings and bad input, through `chaos run` and `chaosray suite run`
as users give them (--var, --var-file, the suite's options), never by
calling an action with `configuration=`. Each case asserts on the test
cluster's pods and nodes before and after: nothing changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.chaos_cli import ChaosRun, run_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, KubeCluster, token_kubeconfig

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
FAST = {
    "baseline_s": 1.0,
    "observe_s": 2.0,
    "replacement_timeout_s": 30.0,
    "load_rate": 10,
}


def _state(cluster: KubeCluster) -> dict[str, Any]:
    """What a destructive action would change: every pod (by uid) and the
    nodes' cordons."""
    core = cluster.core()
    return {
        "pods": sorted(p.metadata.uid for p in core.list_namespaced_pod(NAMESPACE).items),
        "cordoned": sorted(n.metadata.name for n in core.list_node().items if n.spec.unschedulable),
    }


def _worker_delete(
    cluster: KubeCluster,
    server: ScheduledServer,
    tmp_path: Path,
    *args: str,
    configuration: dict[str, Any] | None = None,
    var_file_text: str | None = None,
) -> ChaosRun:
    var_file = tmp_path / "vars.json"
    if var_file_text is None:
        var_file_text = json.dumps(
            {"configuration": {**FAST, "inference_url": server.url, **(configuration or {})}}
        )
    var_file.write_text(var_file_text)
    experiment = json.loads((EXPERIMENTS / "worker-delete.json").read_text())
    return run_experiment(
        experiment,
        tmp_path,
        extra_args=("--var-file", str(var_file), *args),
        env={"KUBECONFIG": str(cluster.kubeconfig)},
        timeout=180,
    )


def _delete_entry(run: ChaosRun) -> dict[str, Any]:
    return run.run_entry("delete-one-worker-and-watch")


def test_a_disallowed_context_through_var_deletes_nothing(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    run = _worker_delete(
        topology, scheduled_server, tmp_path, "--var", "chaosray_allowed_contexts=other"
    )
    entry = _delete_entry(run)
    assert entry["status"] == "failed"
    assert "is not in chaosray_allowed_contexts (other)" in str(entry["exception"])
    assert run.journal["chaosray"]["verdict"]["passed"] is False
    assert run.returncode != 0
    assert _state(topology) == before


@pytest.mark.parametrize("how", ["var", "var-file"])
def test_dry_run_deletes_nothing(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path, how: str
) -> None:
    before = _state(topology)
    if how == "var":
        run = _worker_delete(topology, scheduled_server, tmp_path, "--var", "chaosray_dry_run=true")
    else:
        run = _worker_delete(
            topology, scheduled_server, tmp_path, configuration={"chaosray_dry_run": True}
        )
    entry = _delete_entry(run)
    assert entry["status"] == "succeeded", entry
    assert entry["output"]["dry_run"] is True
    assert _state(topology) == before


def test_a_malformed_var_file_runs_nothing(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    run = _worker_delete(
        topology, scheduled_server, tmp_path,
        var_file_text='{"configuration": {"chaosray_dry_run": true,}}',
    )  # fmt: skip
    assert run.journal["status"] == "interrupted"
    assert f"var file {tmp_path / 'vars.json'} does not parse" in run.console
    assert not [r for r in run.journal["run"] if r["activity"]["name"].startswith("delete")]
    assert _state(topology) == before


def test_a_misspelt_key_is_named_with_the_nearest_known_one(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    run = _worker_delete(topology, scheduled_server, tmp_path, configuration={"namspace": "x"})
    assert run.journal["status"] == "interrupted"
    assert "unknown configuration key 'namspace' (did you mean 'namespace'?)" in run.console
    assert _state(topology) == before


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("monitor_rate=0", "rate must be greater than 0, got 0.0 (configuration 'monitor_rate')"),
        ("monitor_rate=fast", "rate (configuration 'monitor_rate') must be float, got 'fast'"),
        (
            "no_evidence_verdict=maybe",
            "no_evidence (configuration 'no_evidence_verdict') must be one of failed, "
            "inconclusive, got 'maybe'",
        ),
    ],
)
def test_a_bad_monitor_setting_interrupts_before_the_disruption(
    topology: KubeCluster,
    scheduled_server: ScheduledServer,
    tmp_path: Path,
    setting: str,
    message: str,
) -> None:
    before = _state(topology)
    run = _worker_delete(topology, scheduled_server, tmp_path, "--var", setting)
    assert run.journal["status"] == "interrupted"
    assert message in run.console, run.console
    method = {a["name"] for a in run.journal["experiment"]["method"]}
    assert not method & {r["activity"]["name"] for r in run.journal["run"]}  # nothing ran
    assert scheduled_server.served() == []  # no load either
    assert _state(topology) == before


def test_numbers_given_as_strings_by_var_are_taken_as_numbers(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    run = _worker_delete(
        topology, scheduled_server, tmp_path,
        "--var", "load_rate=20", "--var", "monitor_rate=5", "--var", "chaosray_dry_run=yes",
    )  # fmt: skip
    # A dry run disrupts nothing, so it never passes; the numbers got through.
    assert run.journal["status"] == "failed", run.console
    reasons = run.journal["chaosray"]["verdict"]["reasons"]
    assert any(r.startswith("not measured: disrupted") for r in reasons), reasons
    k6 = run.journal["chaosray"]["k6"]
    assert k6["rate_per_s"] == 20  # the K6 control got the number, not "20"
    monitor = run.run_entry("availability-monitor")["output"]
    assert monitor["rate_per_s"] == 5.0


# --- the suite ----------------------------------------------------------------------------


def _chaosray(*args: str, kubeconfig: Path | str, timeout: float = 300) -> tuple[int, str, float]:
    began = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("chaosray")), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "200"},
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - began


def _suite_args(tmp_path: Path, server: ScheduledServer, **configuration: Any) -> list[str]:
    var_file = tmp_path / "vars.json"
    var_file.write_text(
        json.dumps({"configuration": {**FAST, "inference_url": server.url, **configuration}})
    )
    return ["suite", "run", "--experiments", "worker-delete", "--var-file", str(var_file),
            "--results-dir", str(tmp_path / "results")]  # fmt: skip


def test_the_suite_refuses_a_disallowed_context_before_anything_runs(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    args = _suite_args(tmp_path, scheduled_server)
    code, out, _took = _chaosray(
        *args, "--allowed-contexts", "other", kubeconfig=topology.kubeconfig
    )
    assert code == 2, out
    context = topology.kubectl("config", "current-context").strip()
    assert f"Kubernetes context {context!r} is not allowed" in out
    assert "Traceback" not in out
    assert not (tmp_path / "results").exists()
    assert scheduled_server.served() == []
    assert _state(topology) == before


def test_the_suite_passes_dry_run_from_a_var_file_to_every_action(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    args = _suite_args(tmp_path, scheduled_server, chaosray_dry_run=True)
    _code, out, _took = _chaosray(*args, kubeconfig=topology.kubeconfig)
    (folder,) = (tmp_path / "results").iterdir()
    journal = json.loads((folder / "worker-delete.journal.json").read_text())
    delete = next(
        r for r in journal["run"] if r["activity"]["name"] == "delete-one-worker-and-watch"
    )
    assert delete["output"]["dry_run"] is True, out
    assert _state(topology) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"configuration": {"load_rate": 10,}}', "does not parse"),
        (
            '{"configuration": {"observe_seconds": 10}}',
            "unknown configuration key 'observe_seconds'",
        ),
    ],
)
def test_the_suite_refuses_a_bad_var_file(
    topology: KubeCluster,
    scheduled_server: ScheduledServer,
    tmp_path: Path,
    text: str,
    expected: str,
) -> None:
    before = _state(topology)
    var_file = tmp_path / "bad.json"
    var_file.write_text(text)
    code, out, _took = _chaosray(
        "suite", "run", "--var-file", str(var_file), "--results-dir", str(tmp_path / "r"),
        kubeconfig=topology.kubeconfig,
    )  # fmt: skip
    assert code == 2, out
    assert str(var_file) in out and expected in out
    assert "Traceback" not in out
    assert not (tmp_path / "r").exists()
    assert _state(topology) == before


def test_the_suite_refuses_a_monitor_rate_of_zero(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    before = _state(topology)
    args = _suite_args(tmp_path, scheduled_server)
    code, out, _took = _chaosray(*args, "--monitor-rate", "0", kubeconfig=topology.kubeconfig)
    assert code == 2, out
    assert "monitor_rate must be greater than 0" in out
    assert not (tmp_path / "results").exists()
    assert scheduled_server.served() == []
    assert _state(topology) == before


def _kubeconfig_for(server: str, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "nowhere", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "nowhere",
            }
        )
    )
    return path


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = _kubeconfig_for(f"http://127.0.0.1:{port}", tmp_path)
    code, out, _took = _chaosray(
        "suite", "run", "--results-dir", str(tmp_path / "r"), kubeconfig=kubeconfig
    )
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert (
        lines == [lines[0]] and f"the API server http://127.0.0.1:{port} cannot be reached" in out
    )
    assert "context 'nowhere', user 'u'" in out
    assert not (tmp_path / "r").exists()


def test_an_api_server_that_never_answers_costs_one_bounded_read(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # and never answer
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        kubeconfig = _kubeconfig_for(f"http://127.0.0.1:{port}", tmp_path)
        code, out, took = _chaosray(
            "suite", "run", "--results-dir", str(tmp_path / "r"), kubeconfig=kubeconfig, timeout=120
        )
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    assert code == 2, out
    assert "cannot be reached" in out and "timed out" in out.lower()
    assert len(accepted) == 1  # one request, no retries
    assert took < 30, f"{took:.0f}s"


def test_a_kubeconfig_list_is_read_as_kubectl_reads_it(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    missing = tmp_path / "absent.yaml"
    listed = os.pathsep.join([str(missing), str(topology.kubeconfig)])
    args = _suite_args(tmp_path, scheduled_server, chaosray_dry_run=True)
    _code, out, _took = _chaosray(*args, kubeconfig=listed)
    context = topology.kubectl("config", "current-context").strip()
    assert f"Cluster: {context} (kubeconfig)" in out, out
    assert "no kubeconfig" not in out


def test_dry_run_of_delete_k6_leftovers_keeps_them(topology: KubeCluster, tmp_path: Path) -> None:
    core = topology.core()
    left = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name="k6-left-behind",
            labels={"app.kubernetes.io/managed-by": "chaosray", "app.kubernetes.io/name": "k6"},
        ),
        data={"load.js": "// left behind"},
    )
    core.create_namespaced_config_map(NAMESPACE, left)
    try:
        experiment = {
            "title": "clean up k6 leftovers (dry run)",
            "description": "dry run through --var",
            "configuration": {"chaosray_dry_run": {"type": "env", "key": "X_DRY", "default": ""}},
            "method": [
                {
                    "type": "action",
                    "name": "leftovers",
                    "provider": {
                        "type": "python",
                        "module": "chaosray.load.actions",
                        "func": "delete_k6_leftovers",
                        "arguments": {"namespace": NAMESPACE},
                    },
                }
            ],
        }
        run = run_experiment(
            experiment, tmp_path, extra_args=("--var", "chaosray_dry_run=true"),
            env={"KUBECONFIG": str(topology.kubeconfig)},
        )  # fmt: skip
        output = run.run_entry("leftovers")["output"]
        assert output["dry_run"] is True
        assert f"{NAMESPACE}/k6-left-behind" in output["configmaps"]
        assert core.read_namespaced_config_map("k6-left-behind", NAMESPACE).data == left.data
    finally:
        core.delete_namespaced_config_map("k6-left-behind", NAMESPACE)


def test_refused_credentials_name_the_context_and_user(
    topology: KubeCluster, tmp_path: Path
) -> None:
    token = token_kubeconfig(topology, tmp_path / "token")
    text = token.read_text()
    bad = tmp_path / "bad-token"
    bad.write_text(text.replace(text.split("token: ", 1)[1].split()[0], "not-a-valid-token"))
    code, out, _took = _chaosray(
        "suite", "run", "--results-dir", str(tmp_path / "r"), kubeconfig=bad
    )
    assert code == 2, out
    assert "refused context 'chaosray-token', user 'chaosray': 401 Unauthorized" in out
    assert "not-a-valid-token" not in out  # a secret never reaches the output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (("--namespace", "no-such-ns"), "namespace 'no-such-ns' does not exist"),
        (("--ray-cluster", "no-such-cluster"),
         "RayCluster 'no-such-cluster' not found in namespace 'ray-serve' "
         "(RayClusters there: ray-serve)"),
        (("--nlb-service", "no-such-nlb"),
         "Service 'no-such-nlb' not found in namespace 'ray-serve'"),
    ],
)  # fmt: skip
def test_the_suite_names_what_is_missing_before_anything_runs(
    topology: KubeCluster, tmp_path: Path, option: tuple[str, str], expected: str
) -> None:
    before = _state(topology)
    token = token_kubeconfig(topology, tmp_path / "token")  # as a user: the documented RBAC
    code, out, _took = _chaosray(
        "suite", "run", *option, "--results-dir", str(tmp_path / "r"), kubeconfig=token
    )
    assert code == 2, out
    assert expected in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "r").exists()
    assert _state(topology) == before


def test_a_load_balancer_without_an_address_is_named(topology: KubeCluster, tmp_path: Path) -> None:
    core = topology.core()
    core.create_namespaced_service(
        NAMESPACE,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="nlb-pending"),
            spec=client.V1ServiceSpec(
                type="ClusterIP", ports=[client.V1ServicePort(port=80)], selector={"x": "y"}
            ),
        ),
    )
    try:
        code, out, _took = _chaosray(
            "suite", "run", "--nlb-service", "nlb-pending", "--results-dir", str(tmp_path / "r"),
            kubeconfig=topology.kubeconfig,
        )  # fmt: skip
    finally:
        core.delete_namespaced_service("nlb-pending", NAMESPACE)
    assert code == 2, out
    assert "Service ray-serve/nlb-pending has no load balancer address yet" in out


def test_a_failing_steady_state_probe_reports_its_error_not_none(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = _kubeconfig_for(f"http://127.0.0.1:{port}", tmp_path)
    experiment = json.loads((EXPERIMENTS / "post-validation.json").read_text())
    run = run_experiment(
        experiment, tmp_path, env={"KUBECONFIG": str(kubeconfig)}, timeout=180,
        extra_args=("--var", "inference_url=http://127.0.0.1:9/"),
    )  # fmt: skip
    reasons = " ".join(run.journal["chaosray"]["verdict"]["reasons"])
    assert "(error: " in reasons and "(got None)" not in reasons, reasons
    assert "Connection refused" in reasons or "connection refused" in reasons.lower(), reasons
