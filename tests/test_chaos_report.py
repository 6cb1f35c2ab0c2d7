"""The real `chaos report` (chaostoolkit-reporting, with pandoc and pdflatex
from scripts/setup.sh) on journals of our experiments: saved ones from real
runs (tests/data/journals) and fresh ones, including an experiment cut off by
Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosray.journal import INTERRUPTED_FLAG
from chaosray.report import mark_interrupted_runs, summarize_experiment
from tests.chaos_cli import chaos_report, pdf_text, run_experiment
from tests.rig.http_server import ScheduledServer
from tests.rig.kube import NAMESPACE, WORKERS, KubeCluster

JOURNALS = Path(__file__).parent / "data" / "journals"
# Journals whose tables hold at most one "$" (see docs/report-schema.md on PDF).
PDF_SAFE = ["worker-delete", "head-delete", "k6-monitor-outages"]


def html_text(path: Path) -> str:
    """The page with runs of whitespace as one space (pandoc wraps long lines)."""
    return " ".join(path.read_text().split())


def _write(journal: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(journal))
    return path


@pytest.mark.parametrize(
    "name",
    ["worker-delete", "node-drain", "sequential-worker-delete", "redis-delete", "head-delete",
     "pre-validation", "post-validation", "k6-monitor-outages", "steady-state-failed-before"],
)  # fmt: skip
def test_html5_report_of_a_saved_journal(name: str, tmp_path: Path) -> None:
    journal = JOURNALS / f"{name}.json"
    out = tmp_path / "report.html"
    done = chaos_report(journal, out, "html5")
    assert done.returncode == 0, done.stdout + done.stderr
    page = html_text(out)
    data = json.loads(journal.read_text())
    assert data["experiment"]["title"].split(":")[0] in page
    for entry in data["run"]:  # every run entry has its section, ours included
        assert f"{entry['activity']['type'].title()} - {entry['activity']['name']}" in page
    if "k6" in data.get("chaosray", {}):
        assert "Probe - k6-load" in page and "chaosray.load.control" in page
        assert "exit_reason" in page  # the k6 result in the appendix
    if "timeline" in data.get("chaosray", {}):
        assert "Probe - pod-timeline" in page and "deletion_requested" in page


@pytest.mark.parametrize("name", PDF_SAFE)
def test_pdf_report_of_a_saved_journal(name: str, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    done = chaos_report(JOURNALS / f"{name}.json", out, "pdf")
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:5] == b"%PDF-"
    text = pdf_text(out)
    assert "Probe - k6-load" in text
    if name != "k6-monitor-outages":
        assert "Probe - pod-timeline" in text


def test_chaos_report_fails_on_a_cut_off_activity_until_it_is_marked(tmp_path: Path) -> None:
    """chaostoolkit-reporting 0.18 reads run["status"], which chaoslib never
    sets on an activity a signal cut off: mark_interrupted_runs fixes that."""
    journal = json.loads((JOURNALS / "interrupted-raw.json").read_text())
    raw = _write(journal, tmp_path / "raw.json")
    done = chaos_report(raw, tmp_path / "raw.html", "html5")
    assert done.returncode != 0
    assert "KeyError: 'status'" in done.stdout + done.stderr
    assert "generate_chart_from_metric_probes" in done.stdout + done.stderr

    assert mark_interrupted_runs(journal) == 1
    fixed = _write(journal, tmp_path / "fixed.json")
    for export_format, out in (("html5", tmp_path / "r.html"), ("pdf", tmp_path / "r.pdf")):
        done = chaos_report(fixed, out, export_format)
        assert done.returncode == 0, done.stdout + done.stderr
    page = html_text(tmp_path / "r.html")
    assert "Action - wait" in page and "cut off by a signal" in page
    assert "cut off by a signal" in pdf_text(tmp_path / "r.pdf")


def _load_experiment(server: ScheduledServer, pause: float) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "title": "chaos report under test",
        "description": "load while a long action runs",
        "controls": [{"name": "k6-load", "provider": {
            "type": "python", "module": "chaosray.load.control",
            "arguments": {"target_url": server.url, "rate": 10}}}],
        "method": [
            {"type": "probe", "name": "monitor", "background": True, "provider": {
                "type": "python", "module": "chaosray.load.probes",
                "func": "monitor_availability",
                "arguments": {"url": server.url + "/predict", "duration": 3, "rate": 10}}},
            {"type": "action", "name": "long-action", "provider": {
                "type": "process", "path": "sleep", "arguments": str(pause)}},
        ],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }  # fmt: skip


def test_ctrl_c_during_an_activity_then_chaos_report(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    run = run_experiment(
        _load_experiment(scheduled_server, 60), tmp_path, interrupt_after=5, timeout=120
    )
    assert run.journal["status"] == "interrupted"
    cut = run.run_entry("long-action")
    # Either chaoslib left it without a status (controls not yet marking), or
    # our controls already marked it; after this call it is marked either way.
    assert "status" not in cut or cut.get(INTERRUPTED_FLAG)
    mark_interrupted_runs(run.journal)
    cut = next(r for r in run.journal["run"] if r["activity"]["name"] == "long-action")
    assert cut["status"] == "failed" and cut[INTERRUPTED_FLAG] is True
    journal = _write(run.journal, tmp_path / "marked.json")
    for export_format, out in (("html5", tmp_path / "r.html"), ("pdf", tmp_path / "r.pdf")):
        done = chaos_report(journal, out, export_format)
        assert done.returncode == 0, done.stdout + done.stderr
    page = html_text(tmp_path / "r.html")
    assert "Probe - k6-load" in page and "Action - long-action" in page
    assert "cut off by a signal" in page
    summary = summarize_experiment(run.journal)
    assert [r["kind"] for r in summary["verdict"]["reasons"]][:2] == [
        "interrupted",
        "activity_interrupted",
    ]


def test_chaos_report_of_a_fresh_cluster_run(
    topology: KubeCluster, scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    """Both our controls, a deletion and a recovery wait on the test cluster."""
    experiment = _load_experiment(scheduled_server, 1)
    experiment["controls"].append(
        {
            "name": "pod-timeline",
            "provider": {
                "type": "python",
                "module": "chaosray.k8s.control",
                "arguments": {"namespace": NAMESPACE, "selectors": {"workers": WORKERS}},
            },
        }
    )
    experiment["method"][1:] = [
        {"type": "action", "name": "delete-a-worker", "provider": {
            "type": "python", "module": "chaosray.ray.actions", "func": "delete_ray_worker",
            "arguments": {"cluster": "ray-serve", "namespace": NAMESPACE}}},
        {"type": "probe", "name": "workers-back", "provider": {
            "type": "python", "module": "chaosray.k8s.probes", "func": "wait_for_ready_pods",
            "arguments": {"label_selector": WORKERS, "count": 3, "namespace": NAMESPACE,
                          "timeout": 60}},
         "pauses": {"after": 3}},
    ]  # fmt: skip
    run = run_experiment(
        experiment, tmp_path, env={"KUBECONFIG": str(topology.kubeconfig)}, timeout=180
    )
    assert run.returncode == 0, run.log
    deleted = run.run_entry("delete-a-worker")["output"]["pod"]
    journal = tmp_path / "journal.json"
    for export_format, out in (("html5", tmp_path / "r.html"), ("pdf", tmp_path / "r.pdf")):
        done = chaos_report(journal, out, export_format)
        assert done.returncode == 0, done.stdout + done.stderr
    page = html_text(tmp_path / "r.html")
    for text in ("Probe - k6-load", "Probe - pod-timeline", "Action - delete-a-worker",
                 "delete_ray_worker", deleted, "recovery_s"):  # fmt: skip
        assert text in page, text
    pdf = pdf_text(tmp_path / "r.pdf")
    assert "Probe - pod-timeline" in pdf and "Action - delete-a-worker" in pdf
    summary = summarize_experiment(run.journal)
    assert [d["pod"] for d in summary["disruptions"]] == [deleted]
    assert any(e["pod"] == deleted and e["event"] == "gone" for e in summary["pod_events"])
    assert summary["key_recovery"]["activity"] == "workers-back"
