"""Start and stop real processes for the test rig, leaving nothing behind.

Every component runs in a process group of its own (``start_new_session``),
so stopping it signals the whole group: children such as Ray's raylet or
k6's workers go with their parent. Output goes to a log file whose tail is
put into the error when the component fails to start, so a failing fixture
shows the component's own words.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from chaosray.wait import WaitTimeout, wait_until


class ComponentFailed(RuntimeError):
    """A real component could not be started; the message holds its output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def group_members(pgid: int) -> list[psutil.Process]:
    """Every live process of a process group (zombies excluded)."""
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return members


class ManagedProcess:
    """One real component running in its own process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise ComponentFailed(f"{name}: cannot start {self.argv[0]}: {exc}") from exc
        self.pgid = self.popen.pid  # leader of its own session and group

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[-tail:].decode("utf-8", "replace")

    def fail(self, what: str) -> ComponentFailed:
        state = "running" if self.running() else f"exited with {self.popen.returncode}"
        return ComponentFailed(
            f"{self.name} ({' '.join(self.argv)}): {what}; process {state}. "
            f"Its output ({self.log_path}):\n{self.output()}"
        )

    def wait_ready(self, check: object, timeout: float, description: str) -> None:
        """Wait until ``check()`` is true; fail with the component's output if
        it exits or the timeout passes first."""

        def ready() -> bool:
            if not self.running():
                raise self.fail(f"exited before {description}")
            return bool(check())  # type: ignore[operator]

        try:
            wait_until(ready, timeout=timeout, description=description, ignore=(OSError,))
        except WaitTimeout as exc:
            self.stop()
            raise self.fail(str(exc)) from None
        except ComponentFailed:
            self.stop()
            raise

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after ``grace``."""
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_members(self.pgid) and time.monotonic() < deadline:
            if self.popen.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=0.1)
            else:
                time.sleep(0.1)
        if group_members(self.pgid):
            self.signal_group(signal.SIGKILL)
            wait_until(
                lambda: not group_members(self.pgid),
                timeout=10,
                description=f"{self.name} process group {self.pgid} to exit",
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this component's group that are still alive."""
        return group_members(self.pgid)
