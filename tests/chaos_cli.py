"""Run experiments with the real ``chaos`` command and read their journals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def chaos_binary() -> str:
    return str(Path(sys.executable).with_name("chaos"))


def chaos_argv(*args: str) -> list[str]:
    """``chaos`` without its version check (a request to releases.chaostoolkit.org)."""
    return [chaos_binary(), "--no-version-check", *args]


@dataclass
class ChaosRun:
    returncode: int
    journal: dict[str, Any]
    console: str  # what the user sees
    log: str  # the console, then chaostoolkit.log (debug level, with tracebacks)

    def run_entry(self, name: str) -> dict[str, Any]:
        return next(r for r in self.journal["run"] if r["activity"]["name"] == name)


def _interruptible() -> None:
    """In the child: Ctrl-C as a terminal gives it. A session started in the
    background without job control (``cmd &`` in a script) ignores SIGINT,
    children inherit that, and Python then installs no KeyboardInterrupt:
    the Ctrl-C tests would send a signal chaos never sees."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_experiment(
    experiment: dict[str, Any],
    work_dir: Path,
    *,
    extra_args: tuple[str, ...] = (),
    timeout: float = 300,
    interrupt_after: float | None = None,
    env: dict[str, str] | None = None,
    interrupts: int = 1,
    interrupt_spacing: float = 0.3,
) -> ChaosRun:
    """``chaos run`` the experiment; optionally send SIGINT (Ctrl-C) after
    ``interrupt_after`` seconds, ``interrupts`` times, ``interrupt_spacing``
    seconds apart."""
    path = work_dir / "experiment.json"
    path.write_text(json.dumps(experiment, indent=2))
    journal_path = work_dir / "journal.json"
    log_path = work_dir / "chaostoolkit.log"
    argv = [
        *chaos_argv("--log-file", str(log_path), "run"),
        "--journal-path", str(journal_path), *extra_args, str(path),
    ]  # fmt: skip
    with subprocess.Popen(
        argv,
        cwd=work_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_interruptible,
    ) as proc:
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            for index in range(interrupts):
                if index:
                    time.sleep(interrupt_spacing)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=timeout)
    journal = json.loads(journal_path.read_text()) if journal_path.exists() else {}
    log = log_path.read_text() if log_path.exists() else ""
    return ChaosRun(proc.returncode, journal, out, out + log)


def validate_experiment(
    experiment: dict[str, Any], work_dir: Path
) -> subprocess.CompletedProcess[str]:
    path = work_dir / "experiment.json"
    path.write_text(json.dumps(experiment, indent=2))
    return subprocess.run(
        chaos_argv("--no-log-file", "validate", str(path)),
        capture_output=True, text=True, timeout=120, cwd=work_dir,
    )  # fmt: skip


def k6_control_experiment(control_args: dict[str, Any], pause: float) -> dict[str, Any]:
    """A minimal experiment: the K6 control with ``control_args`` around a
    method that only pauses ``pause`` seconds."""
    return {
        "version": "1.0.0",
        "title": "k6 control under test",
        "description": "load while pausing",
        "controls": [
            {
                "name": "k6-load",
                "provider": {
                    "type": "python",
                    "module": "chaosray.load.control",
                    "arguments": control_args,
                },
            }
        ],
        "method": [
            {
                "type": "action",
                "name": "wait",
                "provider": {"type": "process", "path": "true"},
                "pauses": {"after": pause},
            }
        ],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }


def chaos_report(journal: Path, out: Path, export_format: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*chaos_argv("--no-log-file", "report"), f"--export-format={export_format}",
         str(journal), str(out)],
        capture_output=True, text=True, timeout=300, cwd=out.parent,
    )  # fmt: skip


def pdf_text(path: Path) -> str:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext (poppler-utils) is installed by scripts/setup.sh"
    done = subprocess.run([pdftotext, str(path), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())
