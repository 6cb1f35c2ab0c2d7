"""The ``chaosray`` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chaosray


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("chaosray")), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version() -> None:
    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"chaosray {chaosray.__version__}"


def test_help_names_the_command() -> None:
    done = _run("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: chaosray")


def test_unknown_option_is_a_clear_error() -> None:
    done = _run("--no-such-option")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr
    assert "Traceback" not in done.stderr
