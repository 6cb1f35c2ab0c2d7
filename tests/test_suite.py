"""`chaosray suite run`, as users run it, against the test cluster and a
local inference server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client

from chaosray.wait import wait_until
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, REPO, WORKERS, KubeCluster

FAST = {
    "baseline_s": 1.0,
    "observe_s": 2.0,
    "replacement_timeout_s": 30.0,
    "load_rate": 10,
    "redis_mode": "none",  # the test cluster's Redis pods are kwok's
}


def _chaosray() -> str:
    return str(Path(sys.executable).with_name("chaosray"))


def _suite(
    cluster: KubeCluster,
    server: ScheduledServer,
    tmp_path: Path,
    experiments: str,
    extra: dict[str, Any] | None = None,
    interrupt_after: float | None = None,
    options: list[str] | None = None,
    results: str = "results",
    interrupt: Callable[[subprocess.Popen[str]], None] | None = None,
    command: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
) -> tuple[int, str, Path]:
    var_file = tmp_path / "vars.json"
    configuration = {**FAST, "inference_url": server.url, **(extra or {})}
    var_file.write_text(json.dumps({"configuration": configuration}))
    argv = [
        *(command or [_chaosray()]),
        "suite",
        "run",
        "--experiments",
        experiments,
        "--var-file",
        str(var_file),
        "--results-dir",
        str(tmp_path / results),
        *(options or []),
    ]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), **(env_extra or {})}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            proc.send_signal(signal.SIGINT)
        if interrupt is not None:
            interrupt(proc)
        out, _ = proc.communicate(timeout=600)
    (folder,) = (tmp_path / results).iterdir()
    return proc.returncode, out, folder


def _summary(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "summary.json").read_text()))


def _verdicts(folder: Path) -> dict[str, bool]:
    return {e["name"]: e["verdict"]["passed"] for e in _summary(folder)["experiments"]}


def test_a_passing_suite_exits_0_and_writes_every_report(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    code, out, folder = _suite(
        topology, scheduled_server, tmp_path, "pre-validation,post-validation"
    )
    assert code == 0, out
    assert _verdicts(folder) == {"pre-validation": True, "post-validation": True}
    for name in ("pre-validation", "post-validation"):
        assert json.loads((folder / f"{name}.journal.json").read_text())["status"] == "completed"
        assert (folder / f"{name}.log").stat().st_size > 0
    junit = ET.parse(folder / "junit.xml").getroot()
    experiments, criteria = junit.findall("testsuite")
    cases = experiments.findall("testcase")
    assert [c.get("name") for c in cases] == ["pre-validation", "post-validation"]
    # A case per criterion, every one held.
    assert "before:ray-workers-ready" in {c.get("name") for c in criteria.findall("testcase")}
    assert not junit.findall(".//failure")
    assert "post-validation" in (folder / "report.html").read_text()


def test_the_suite_runs_chaos_toolkit_with_no_chaos_script_beside_its_interpreter(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    """A `pip install --user` or system install: the interpreter is
    /usr/bin/python3 and no `chaos` sits beside it (the script went to
    ~/.local/bin, or nowhere on PATH). The suite runs Chaos Toolkit as a
    module of its own interpreter, so it still runs."""
    system_python = Path("/usr/bin/python3")
    assert system_python.exists() and not system_python.with_name("chaos").exists()
    # The packages as a --user install would have them on the path.
    path = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
    code, out, folder = _suite(
        topology, scheduled_server, tmp_path, "pre-validation",
        command=[str(system_python), "-m", "chaosray.cli"],
        env_extra={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert code == 0, out
    assert _verdicts(folder) == {"pre-validation": True}
    journal = json.loads((folder / "pre-validation.journal.json").read_text())
    assert journal["status"] == "completed"


def test_the_suite_continues_past_a_failed_scenario_and_exits_1(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    def outage_during_worker_delete() -> None:
        # An outage once worker-delete has started (its log exists), over
        # well before post-validation begins.
        wait_until(
            lambda: list((tmp_path / "results").glob("*/worker-delete.log")),
            timeout=120,
            description="worker-delete to start",
        )
        scheduled_server.arm([{"start": 1.0, "end": 5.0, "mode": "down"}])

    threading.Thread(target=outage_during_worker_delete, daemon=True).start()
    code, out, folder = _suite(
        topology, scheduled_server, tmp_path, "pre-validation,worker-delete,post-validation"
    )
    assert code == 1, out
    assert _verdicts(folder) == {
        "pre-validation": True,
        "worker-delete": False,
        "post-validation": True,
    }
    experiments, criteria = ET.parse(folder / "junit.xml").getroot().findall("testsuite")
    failures = experiments.findall(".//failure")
    assert len(failures) == 1
    # The criteria that broke are worker-delete's only.
    broken = {
        c.get("classname") for c in criteria.iter("testcase") if c.find("failure") is not None
    }
    assert broken == {"chaosray.worker-delete"}, broken
    message = (failures[0].get("message") or "") + (failures[0].text or "")
    # The outage fails the monitor (its success rate, or its reachability
    # check when the outage began before it), the steady state or k6's
    # threshold, whichever it overlapped.
    reasons = (
        "success rate", "does not answer before monitoring starts", "inference-succeeds",
        "thresholds_failed", "thresholds failed",
    )  # fmt: skip
    assert any(why in message for why in reasons), message


def test_a_dry_run_the_user_calls_inconclusive_exits_3_and_is_never_passed(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    """worker-delete as a dry run: nothing is deleted, so nothing broke and
    `disrupted` has no evidence. With no_evidence_verdict "inconclusive" the
    suite says inconclusive and exits 3; never passed, never 0."""
    workers = WORKERS
    core = topology.core()

    def uids() -> set[str]:
        listed = core.list_namespaced_pod(NAMESPACE, label_selector=workers).items
        return {p.metadata.uid for p in listed}

    before = uids()
    extra = {"chaosray_dry_run": "true", "no_evidence_verdict": "inconclusive"}
    code, out, folder = _suite(topology, scheduled_server, tmp_path, "worker-delete", extra)
    assert code == 3, out
    (experiment,) = _summary(folder)["experiments"]
    verdict = experiment["verdict"]
    assert verdict["passed"] is False and verdict["inconclusive"] is True, verdict
    assert any(
        r["message"].startswith("not measured: disrupted: nothing was really disrupted")
        for r in verdict["reasons"]
    )
    assert "INCONCLUSIVE" in out
    assert uids() == before


def test_a_failed_pre_validation_skips_the_scenarios(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    policy = client.PolicyV1Api(topology.api())
    saved = policy.read_namespaced_pod_disruption_budget("ray-worker-pdb", NAMESPACE)
    policy.delete_namespaced_pod_disruption_budget("ray-worker-pdb", NAMESPACE)
    try:
        code, out, folder = _suite(
            topology, scheduled_server, tmp_path, "pre-validation,worker-delete,post-validation"
        )
    finally:
        saved.metadata = client.V1ObjectMeta(name="ray-worker-pdb", namespace=NAMESPACE)
        saved.status = None
        policy.create_namespaced_pod_disruption_budget(NAMESPACE, saved)
    assert code == 1, out
    assert _verdicts(folder) == {
        "pre-validation": False,
        "worker-delete": False,
        "post-validation": True,
    }
    assert not (folder / "worker-delete.journal.json").exists()  # never run
    assert "worker-delete: skipped (pre-validation failed" in out
    summary = _summary(folder)
    # Skipped is neither passed nor failed, in the summary, the table and JUnit.
    assert summary["totals"] == {
        "experiments": 3, "passed": 1, "failed": 1, "inconclusive": 0, "skipped": 1,
        "overall_passed": False,
    }  # fmt: skip
    row = next(r for r in summary["comparison"]["rows"] if r["experiment"] == "worker-delete")
    assert row["verdict"] == "skipped"
    assert "1 passed, 1 failed, 1 skipped" in out
    junit = ET.parse(folder / "junit.xml").getroot()
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert cases["worker-delete"].find("skipped") is not None
    assert cases["worker-delete"].find("failure") is None
    assert cases["pre-validation"].find("failure") is not None
    assert junit.find("testsuite").get("skipped") == "1"  # type: ignore[union-attr]


def test_ctrl_c_cleans_up_and_writes_the_report_so_far(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    code, out, folder = _suite(
        topology,
        scheduled_server,
        tmp_path,
        "pre-validation,node-drain,post-validation",
        extra={"baseline_s": 60.0, "monitor_duration_s": 90.0},
        interrupt_after=20,
    )
    assert code == 130, out
    summary = _summary(folder)
    assert summary["interrupted"] is True
    names = [e["name"] for e in summary["experiments"]]
    assert names == ["pre-validation", "node-drain", "post-validation"]
    not_run = summary["experiments"][2]["verdict"]
    assert not_run["skipped"] and "interrupted" in not_run["reasons"][0]["message"]
    drain = json.loads((folder / "node-drain.journal.json").read_text())
    monitor = next(r for r in drain["run"] if r["activity"]["name"] == "availability-monitor")
    assert monitor["output"]["stopped_early"] is True  # not left running its 90 s
    core = topology.core()
    assert not [n.metadata.name for n in core.list_node().items if n.spec.unschedulable]
    k6_left = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "k6"]
    assert not k6_left
    requests_after_stop = len(scheduled_server.served())
    time.sleep(1.5)
    assert len(scheduled_server.served()) == requests_after_stop  # no load left running


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_stops_the_suite_as_ctrl_c_does_and_leaves_no_process(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    descendants: list[psutil.Process] = []
    commands: list[str] = []

    def sigterm_during_the_drain(proc: subprocess.Popen[str]) -> None:
        def pausing() -> bool:
            logs = list((tmp_path / "results").glob("*/node-drain.log"))
            return bool(logs) and "Pausing before next activity" in logs[0].read_text()

        wait_until(pausing, timeout=120, description="node-drain's baseline pause")
        descendants.extend(psutil.Process(proc.pid).children(recursive=True))
        commands.extend(" ".join(p.cmdline()) for p in descendants)
        proc.send_signal(signal.SIGTERM)  # as a CI system or Kubernetes cancels a Job

    code, out, folder = _suite(
        topology,
        scheduled_server,
        tmp_path,
        "node-drain,post-validation",
        extra={"baseline_s": 60.0, "monitor_duration_s": 90.0},
        interrupt=sigterm_during_the_drain,
    )
    assert code == 143, out
    assert any("-m chaostoolkit --no-version-check" in c for c in commands), commands
    # No orphan: the `chaos run` the suite started, and its k6, are gone.
    assert all(_gone(p) for p in descendants), [p.pid for p in descendants if not _gone(p)]
    summary = _summary(folder)
    assert summary["interrupted"] is True
    drain, post = summary["experiments"]
    assert drain["name"] == "node-drain" and not drain["verdict"]["passed"]
    assert not drain["verdict"]["skipped"]
    assert any("interrupted" in r["message"] for r in drain["verdict"]["reasons"])
    assert post["verdict"]["skipped"]
    assert "interrupted (SIGTERM)" in post["verdict"]["reasons"][0]["message"]
    journal = json.loads((folder / "node-drain.journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert "interrupted by SIGTERM" in journal["chaosray"]["verdict"]["reasons"][0]
    assert journal["rollbacks"], "the rollbacks ran"
    junit = ET.parse(folder / "junit.xml").getroot()
    case = junit.find(".//testcase[@name='node-drain']")
    assert case is not None and case.find("skipped") is None
    assert case.find("error") is not None or case.find("failure") is not None  # never a pass
    assert "node-drain" in (folder / "report.html").read_text()
    assert not [n.metadata.name for n in topology.core().list_node().items if n.spec.unschedulable]
    served = len(scheduled_server.served())
    time.sleep(1.5)
    assert len(scheduled_server.served()) == served  # no load left running


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update({"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)})
    done = subprocess.run(
        [_chaosray(), "suite", "run"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2
    assert "no Kubernetes configuration" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()


def test_unknown_experiment_is_refused(topology: KubeCluster, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(topology.kubeconfig)}
    done = subprocess.run(
        [
            _chaosray(),
            "suite",
            "run",
            "--experiments",
            "pre-validation,chaos-monkey",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown experiment(s) chaos-monkey" in done.stdout
    assert not (tmp_path / "results").exists()


def test_repeats_and_a_comparison_with_a_baseline_run(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    code, out, baseline = _suite(
        topology, scheduled_server, tmp_path, "worker-delete", options=["--repeat", "2"]
    )
    assert code == 0, out
    code, out, folder = _suite(
        topology, scheduled_server, tmp_path, "worker-delete", results="again",
        options=["--repeat", "2", "--baseline", str(baseline), "--fail-on-regression"],
    )  # fmt: skip
    summary = _summary(folder)
    runs = [(e["name"], e["repeat"], e["files"]["journal"]) for e in summary["experiments"]]
    assert runs == [
        ("worker-delete", 1, "worker-delete.r1.journal.json"),
        ("worker-delete", 2, "worker-delete.r2.journal.json"),
    ]
    for stem in ("worker-delete.r1", "worker-delete.r2"):
        assert (folder / f"{stem}.samples.jsonl").stat().st_size > 0
    repeated = summary["repeats"]["worker-delete"]
    assert repeated["runs"] == 2
    rates = repeated["figures"]["success_rate"]
    assert rates["values"] == [e["availability"]["success_rate"] for e in summary["experiments"]]
    assert rates["min"] <= rates["median"] <= rates["max"]
    comparison = json.loads((folder / "comparison.json").read_text())
    (row,) = comparison["rows"]
    assert row["runs"] == {"baseline": 2, "current": 2}
    failed = row["figures"]["failed_requests"]
    requests = [e["availability"]["requests"] for e in summary["experiments"]]
    assert failed["current"]["requests"] == sum(requests)
    assert failed["request_level"]["test"] == "fisher_exact"
    p99 = row["figures"]["p99_ms"]
    assert p99["test"] == "welch_t" and len(p99["baseline_values"]) == 2
    assert p99["request_level"]["test"] == "bootstrap"
    # The exit code follows the comparison: 1 only for a significant, worse change.
    assert code == (1 if comparison["regressed"] else 0), out
    assert "Compared with the baseline" in out
    assert "Compared with the baseline" in (folder / "report.html").read_text()
    budget = summary["experiments"][0]["budget"]
    assert budget["slo"] == {"target": 0.999, "period_days": 30.0, "latency_p99_ms": None}


def test_a_baseline_that_is_not_a_results_folder_is_refused(
    topology: KubeCluster, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(topology.kubeconfig)}
    done = subprocess.run(
        [_chaosray(), "suite", "run", "--baseline", str(tmp_path), "--results-dir",
         str(tmp_path / "results")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{tmp_path} is not a results folder: no summary.json" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()
