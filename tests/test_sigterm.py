"""SIGTERM (how CI systems and Kubernetes Jobs cancel a run) to a real
``chaos run``: handled as Ctrl-C, against the test cluster and a local
inference server. ``chaosray suite run`` under SIGTERM: tests/test_suite.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client

from chaosray.judge import judge
from chaosray.k8s.safety import CORDON_LABEL
from chaosray.wait import wait_until
from tests.chaos_cli import chaos_argv
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import KubeCluster
from tests.test_experiments import EXPERIMENTS, _drain_setup
from tests.test_experiments import FAST as EXPERIMENT_TIMINGS

# The replacement waits long enough for the signal to come in its wait.
FAST = {**EXPERIMENT_TIMINGS, "replacement_timeout_s": 60.0}


def _uncordon(core: client.CoreV1Api, nodes: list[str]) -> None:
    for name in nodes:
        core.patch_node(name, {"spec": {"unschedulable": None}})


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_during_a_drain_stops_the_method_rolls_back_and_fails_the_verdict(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    core = topology.core()
    free = _drain_setup(core)  # the method then sits in its long wait
    var_file = tmp_path / "vars.json"
    var_file.write_text(
        json.dumps({"configuration": {**FAST, "inference_url": scheduled_server.url}})
    )
    experiment = tmp_path / "node-drain.json"
    experiment.write_text((EXPERIMENTS / "node-drain.json").read_text())
    journal_path, log_path = tmp_path / "journal.json", tmp_path / "chaostoolkit.log"
    argv = [
        *chaos_argv("--log-file", str(log_path), "run"),
        "--journal-path", str(journal_path), "--var-file", str(var_file), str(experiment),
    ]  # fmt: skip
    env = {**os.environ, "KUBECONFIG": str(topology.kubeconfig)}
    with subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        # The long step: waiting for the drained worker's replacement (a watch
        # that resumes after errors: chaoslib's InterruptExecution was lost there).
        waiting = "Probe: worker-rescheduled-and-ready"
        wait_until(
            lambda: log_path.exists() and waiting in log_path.read_text(),
            timeout=120,
            description="the wait for the replacement to start",
        )
        time.sleep(1.0)
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert any(p.name() == "k6" for p in descendants), "the load runs"
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # As on the lab: the replacement comes up a little later (the method
        # would then go on and pass if the signal were lost).
        later = threading.Timer(8.0, _uncordon, args=(core, free))
        later.start()
        out, _ = proc.communicate(timeout=180)
        stopped_in = time.monotonic() - signalled
    later.join()
    journal: dict[str, Any] = json.loads(journal_path.read_text())
    assert proc.returncode != 0, out
    assert journal["status"] == "interrupted", out
    verdict = journal["chaosray"]["verdict"]
    assert verdict["passed"] is False
    assert "interrupted by SIGTERM" in verdict["reasons"][0], verdict
    assert judge(journal)["passed"] is False
    # The method stopped where the signal came: its later steps never ran.
    names = [r["activity"]["name"] for r in journal["run"]]
    assert "uncordon-the-drained-node" not in names, names
    monitor = next(r for r in journal["run"] if r["activity"]["name"] == "availability-monitor")
    assert monitor["output"]["stopped_early"] is True
    # The undo steps ran: the drained node is uncordoned by the rollback.
    drained = next(r for r in journal["run"] if r["activity"]["name"] == "drain-a-worker-node")
    node = drained["output"]["node"]
    rollback = journal["rollbacks"][0]
    assert rollback["status"] == "succeeded"
    assert node in rollback["output"]["uncordoned"]
    assert not core.read_node(node).spec.unschedulable
    assert not core.list_node(label_selector=CORDON_LABEL).items
    # Nothing left running: chaos's children (k6 among them) are gone, no load.
    assert stopped_in < 60, f"took {stopped_in:.0f}s to stop"
    assert all(_gone(p) for p in descendants), [p.pid for p in descendants if not _gone(p)]
    served = len(scheduled_server.served())
    time.sleep(1.5)
    assert len(scheduled_server.served()) == served
