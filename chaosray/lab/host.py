"""What the lab does to the machine, and how it undoes it: commands,
detached processes, mounts, cgroups and sysctls.

Every lab process runs detached (its own session, a pid file under the lab's
directory, its log in ``logs/``) so that ``chaosray lab up`` can return and
``chaosray lab down`` can find them. Everything here is idempotent: undoing
what is not there is not an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import psutil

from chaosray.wait import WaitTimeout, wait_until

__all__: list[str] = []

CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LabError(RuntimeError):
    """A lab step failed; the message says which and why (no traceback)."""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a short command; on failure the error names it and quotes its output."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (run scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout:g}s") from None
    if check and done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise LabError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {output}")
    return done.stdout


def in_netns(netns: Path | None, argv: Sequence[str]) -> list[str]:
    """``argv`` in the lab's network namespace. nsenter, not ``ip netns exec``:
    that one remounts /sys, which hides the cgroup hierarchies the kubelet
    and runc need."""
    return ["nsenter", f"--net={netns}", "--", *argv] if netns else list(argv)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    pids: Path,
    logs: Path,
    netns: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a long-running component detached, unless its pid file names a
    live process already; returns its pid."""
    running = pid_of(pids, name)
    if running:
        return running
    pids.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            in_netns(netns, argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={"PATH": SYSTEM_PATH, **(env or {})},
        )
    (pids / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def write_config(path: Path, text: str) -> bool:
    """Write a component's configuration file only when its content changes,
    and say whether it did. kube-proxy exits on any write or rename of its
    ``--config`` file (cmd/kube-proxy/app/options.go ``eventHandler``,
    v1.34), so a second ``up`` that rewrote an unchanged file would leave the
    lab with no kube-proxy and Service rules frozen at that instant."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    path.write_text(text)
    return True


def pid_of(pids: Path, name: str) -> int | None:
    """The live pid of a component started by :func:`spawn`, or None."""
    try:
        pid = int((pids / f"{name}.pid").read_text())
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE:
            return pid
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        pass
    return None


def log_tail(logs: Path, name: str, lines: int = 15) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def stop(pids: Path, name: str, timeout: float = 20) -> None:
    """SIGTERM the component's session, then SIGKILL what is left."""
    pid = pid_of(pids, name)
    if pid:
        terminate([pid], timeout)
    with contextlib.suppress(FileNotFoundError):
        (pids / f"{name}.pid").unlink()


def terminate(pids: Iterable[int], timeout: float = 20) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def processes_mentioning(marker: str) -> list[psutil.Process]:
    """Live processes whose command line names ``marker`` (the lab's directory)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


# --- mounts -----------------------------------------------------------------


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below ``prefix``, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(prefix) or point.startswith(f"{prefix}/"):
            points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def unmount_all(prefix: Path) -> None:
    """Unmount everything below ``prefix`` (volumes, rootfs, shm, netns
    mounts that a killed kubelet or containerd left behind)."""
    for _ in range(5):
        points = mounts_under(prefix)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", point], capture_output=True)
    left = mounts_under(prefix)
    if left:
        raise LabError(f"could not unmount: {', '.join(left[:5])}")


# --- cgroups ----------------------------------------------------------------


def hierarchies() -> list[Path]:
    """The mounted cgroup v1 hierarchies (and the v2 ``unified`` one, if any)."""
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def make_cgroup(path: str) -> list[str]:
    """Create ``path`` in every hierarchy, as the kubelet's cgroupRoot must
    exist; cpuset directories get their parent's cpus and mems, or nothing
    could run in them. Returns the directories it created, parents first."""
    created: list[str] = []
    for hierarchy in hierarchies():
        current = hierarchy
        for part in path.strip("/").split("/"):
            parent, current = current, current / part
            if not current.exists():
                try:
                    current.mkdir()
                    created.append(str(current))
                except OSError as exc:
                    if hierarchy.name == "unified":
                        break  # the v2 mount of a hybrid set-up is optional
                    raise LabError(f"cannot create cgroup {current}: {exc}") from None
            for name in ("cpuset.cpus", "cpuset.mems"):
                source, target = parent / name, current / name
                if source.exists() and target.exists() and not target.read_text().strip():
                    target.write_text(source.read_text())
    return created


def remove_dirs(paths: Iterable[str]) -> None:
    """rmdir what :func:`make_cgroup` created (children first)."""
    for path in sorted(paths, key=lambda p: -p.count("/")):
        with contextlib.suppress(FileNotFoundError, OSError):
            Path(path).rmdir()


def _cgroup_dirs(root: Path) -> list[Path]:
    """``root`` and every cgroup below it, tolerating ones that vanish while
    we look (pods exiting)."""
    found = []
    for current, _, _ in os.walk(root, onerror=lambda _: None):
        found.append(Path(current))
    return found


def cgroup_pids(path: str) -> set[int]:
    found: set[int] = set()
    for hierarchy in hierarchies():
        for directory in _cgroup_dirs(hierarchy / path.strip("/")):
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
    return found


def kill_cgroup(path: str, timeout: float = 20) -> None:
    """SIGKILL every process in ``path`` (all hierarchies) until none is left."""

    def empty() -> bool:
        pids = cgroup_pids(path) - {os.getpid()}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return not pids

    try:
        wait_until(empty, timeout=timeout, description=f"the processes of cgroup {path} to exit")
    except WaitTimeout as exc:
        raise LabError(str(exc)) from None


def remove_cgroup(path: str) -> None:
    """rmdir ``path`` and its children (deepest first) in every hierarchy."""
    for hierarchy in hierarchies():
        root = hierarchy / path.strip("/")
        if not root.is_dir():
            continue
        for child in sorted(_cgroup_dirs(root), key=lambda p: -len(p.parts)):
            with contextlib.suppress(FileNotFoundError):
                child.rmdir()


def cgroups_left(path: str) -> list[Path]:
    return [h / path.strip("/") for h in hierarchies() if (h / path.strip("/")).exists()]


# --- sysctls ----------------------------------------------------------------


def read_sysctls(names: Iterable[str]) -> dict[str, str]:
    return {name: (Path("/proc/sys") / name).read_text().strip() for name in names}


def write_sysctls(values: Mapping[str, str]) -> None:
    for name, value in values.items():
        (Path("/proc/sys") / name).write_text(value)
