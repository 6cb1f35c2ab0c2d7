"""The scheduled-failure inference server as a real process (see
``scheduled_server.py`` for the behaviour)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.rig.procs import ManagedProcess, free_port

SERVER_SCRIPT = Path(__file__).with_name("scheduled_server.py")


@dataclass
class Window:
    """A window the server applied, in epoch seconds."""

    start: float
    end: float
    mode: str
    status: int
    delay: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class ScheduledServer:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, windows: list[dict[str, Any]]) -> list[Window]:
        """Arm failure windows relative to now (``start``/``end`` in seconds
        from now, ``mode`` down|reset|slow|error, optional ``status``/``delay``);
        returns the absolute windows the server will apply. Clears the request log."""
        answer = requests.post(f"{self.url}/_rig/schedule", json={"windows": windows}, timeout=5)
        answer.raise_for_status()
        return [Window(**w) for w in answer.json()["windows"]]

    def served(self) -> list[dict[str, Any]]:
        """Every request served since the last ``arm``: ``t``, ``path``, ``mode``, ``status``."""
        answer = requests.get(f"{self.url}/_rig/requests", timeout=5)
        answer.raise_for_status()
        return list(answer.json()["requests"])

    def stop(self) -> None:
        self.process.stop()


def start_scheduled_server(work_dir: Path) -> ScheduledServer:
    port = free_port()
    proc = ManagedProcess(
        "scheduled-server", [sys.executable, str(SERVER_SCRIPT), str(port)], work_dir
    )
    server = ScheduledServer(proc, port)
    proc.wait_ready(
        lambda: requests.get(f"{server.url}/_rig/requests", timeout=1).ok,
        15,
        "the scheduled server to answer",
    )
    return server
