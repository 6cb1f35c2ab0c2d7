"""The K6 control's overhead: k6 run alone against k6 run by the control
under ``chaos run``, same script, rate and duration, against the rig's
scheduled server.

- **k6 alone** (baseline): ``k6 run`` of ``chaosray/load/assets/load.js`` with
  ``TARGET_URL``/``RATE``/``DURATION`` in its environment, as a child of this
  script.
- **k6 alone + JSON out** (diagnostic): the same with ``--out json=...gz``, the
  per-request output the control asks k6 for; it separates what that output
  costs k6 from what the rest of the control costs.
- **k6 under the control**: ``chaos run`` of a tiny experiment declaring the
  control (``chaosray.load.control``, ``duration`` 1h, stopped by the control)
  whose method is one ``true`` action with a pause of ``--duration`` seconds.

Figures: wall time of the whole thing; CPU of k6 (psutil samples every 20 ms
until it exits, for every variant; exact from ``RUSAGE_CHILDREN`` for the
variants whose k6 is our child); CPU of everything started
(``RUSAGE_CHILDREN``: for the control, ``chaos`` + k6); requests achieved
(the k6 summary) and served (the server's log); and where the time goes:
start of the command to k6's start, k6's start to its first request (server
arrival), last request to k6's exit, k6's exit to the command's exit, and the
control's result parsing re-timed in this process on the kept output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's tests.rig

from chaosray.load.k6 import default_script, k6_binary, read_k6_output
from tests.rig.http_server import ScheduledServer, start_scheduled_server

REPO = Path(__file__).resolve().parent.parent
PATH = "/predict"
POLL_S = 0.02
RUN_TIMEOUT_S = 300.0

# Every k6 pid this script saw, so none outlives it.
_seen_k6: dict[int, float] = {}


@dataclass
class Run:
    """One variant's figures."""

    name: str
    wall_s: float = 0.0
    k6_cpu_sampled_s: float = 0.0
    k6_cpu_exact_s: float | None = None
    children_cpu_s: float = 0.0
    requests: int = 0
    served: int = 0
    to_k6_start_s: float = 0.0
    to_first_request_s: float = 0.0
    last_request_to_k6_exit_s: float = 0.0
    k6_exit_to_exit_s: float = 0.0
    achieved_rate: float = 0.0
    exit_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _cpu(times: Any) -> float:
    return float(times.user + times.system)


def _started_at(pid: int) -> float:
    """Epoch seconds at which process ``pid`` started, to the clock tick (10 ms).
    (psutil's create_time adds the boot time in whole seconds: up to 1 s off.)"""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        ticks = int(stat.read().rpartition(")")[2].split()[19])
    with open("/proc/uptime", encoding="ascii") as uptime:
        up = float(uptime.read().split()[0])
    return time.time() - up + ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End a process this script started, and its group, if still running."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_seen_k6() -> list[int]:
    """Kill any k6 this script saw that is still alive; returns their pids."""
    killed = []
    for pid, created in _seen_k6.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                killed.append(pid)
    return killed


class Watch:
    """Follows a started command until it exits: finds its k6 process
    (itself or a descendant), samples the k6's CPU and notes when it exits."""

    def __init__(self, proc: subprocess.Popen[bytes], k6_is_proc: bool) -> None:
        self.proc = proc
        self.k6_is_proc = k6_is_proc
        self.k6: psutil.Process | None = None
        self.k6_created = 0.0
        self.k6_cpu = 0.0
        self.k6_exited_at: float | None = None

    def _find_k6(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.proc.pid)
            candidates = [root] if self.k6_is_proc else root.children(recursive=True)
            for candidate in candidates:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if candidate.name() == "k6":
                        self.k6 = candidate
                        self.k6_created = _started_at(candidate.pid)
                        _seen_k6[candidate.pid] = candidate.create_time()
                        return

    def _sample(self) -> None:
        assert self.k6 is not None
        try:
            if self.k6.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(self.k6.pid)
            self.k6_cpu = _cpu(self.k6.cpu_times())
        except psutil.NoSuchProcess:
            self.k6_exited_at = time.time()

    def follow(self, timeout: float) -> float:
        """Poll until the command exits; returns the time it was seen to exit."""
        deadline = time.monotonic() + timeout
        while True:
            if self.k6 is None:
                self._find_k6()
            elif self.k6_exited_at is None:
                self._sample()
            if self.proc.poll() is not None:
                exited = time.time()
                if self.k6_exited_at is None:
                    self.k6_exited_at = exited
                return exited
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.proc.args!r} still running after {timeout:g}s")
            time.sleep(POLL_S)


def _arrivals(server: ScheduledServer, since: float) -> list[float]:
    return sorted(r["t"] for r in server.served() if r["path"] == PATH and r["t"] >= since)


def _fill_timings(
    run: Run, started: float, watch: Watch, exited: float, arrivals: list[float]
) -> None:
    run.wall_s = exited - started
    run.to_k6_start_s = watch.k6_created - started
    run.served = len(arrivals)
    if arrivals:
        run.to_first_request_s = arrivals[0] - watch.k6_created
        run.last_request_to_k6_exit_s = (watch.k6_exited_at or exited) - arrivals[-1]
    if len(arrivals) > 1:
        run.achieved_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    run.k6_exit_to_exit_s = exited - (watch.k6_exited_at or exited)
    run.k6_cpu_sampled_s = watch.k6_cpu


def run_alone(server: ScheduledServer, args: argparse.Namespace, work: Path, json_out: bool) -> Run:
    name = "k6 alone + JSON" if json_out else "k6 alone"
    work.mkdir(parents=True)
    server.arm([])  # clears the server's request log
    env = {
        **os.environ,
        "TARGET_URL": server.url,
        "TARGET_PATH": PATH,
        "RATE": str(args.rate),
        "DURATION": f"{args.duration}s",
        "SUMMARY_PATH": str(work / "summary.json"),
    }
    argv = [k6_binary(), "run", "--no-usage-report", "--quiet", "--no-color"]
    if json_out:
        argv += ["--out", f"json={work / 'k6-output.json.gz'}"]
    argv.append(str(default_script()))
    children_before = _children_cpu()
    started = time.time()
    with open(work / "k6.log", "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=work, start_new_session=True,
        )  # fmt: skip
    try:
        watch = Watch(proc, k6_is_proc=True)
        exited = watch.follow(RUN_TIMEOUT_S)
    finally:
        _stop_group(proc)
    run = Run(name, exit_code=proc.returncode)
    run.children_cpu_s = _children_cpu() - children_before
    run.k6_cpu_exact_s = run.children_cpu_s
    _fill_timings(run, started, watch, exited, _arrivals(server, started))
    summary = json.loads((work / "summary.json").read_text())
    run.requests = int(summary["requests"])
    if json_out:
        run.extra["output_bytes"] = (work / "k6-output.json.gz").stat().st_size
    return run


def experiment(server: ScheduledServer, args: argparse.Namespace, results: Path) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "title": "k6 control overhead benchmark",
        "description": "load while pausing",
        "controls": [
            {
                "name": "k6-load",
                "provider": {
                    "type": "python",
                    "module": "chaosray.load.control",
                    "arguments": {
                        "target_url": server.url,
                        "path": PATH,
                        "rate": args.rate,
                        "results_dir": str(results),
                        "keep_output": True,
                    },
                },
            }
        ],
        "method": [
            {
                "type": "action",
                "name": "wait",
                "provider": {"type": "process", "path": "true"},
                "pauses": {"after": args.duration},
            }
        ],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }


def run_control(server: ScheduledServer, args: argparse.Namespace, work: Path) -> Run:
    work.mkdir(parents=True)
    server.arm([])
    results = work / "k6"
    path = work / "experiment.json"
    path.write_text(json.dumps(experiment(server, args, results), indent=2))
    journal_path = work / "journal.json"
    chaos = str(Path(sys.executable).with_name("chaos"))
    argv = [
        chaos, "--no-version-check", "--log-file", str(work / "chaostoolkit.log"), "run",
        "--journal-path", str(journal_path), str(path),
    ]  # fmt: skip
    children_before = _children_cpu()
    started = time.time()
    with open(work / "chaos.out", "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=work, start_new_session=True,
        )  # fmt: skip
    try:
        watch = Watch(proc, k6_is_proc=False)
        exited = watch.follow(RUN_TIMEOUT_S)
    finally:
        _stop_group(proc)
        _kill_seen_k6()
    run = Run("k6 + control", exit_code=proc.returncode)
    run.children_cpu_s = _children_cpu() - children_before
    if watch.k6 is None:
        raise RuntimeError(f"chaos run never started k6; see {work / 'chaos.out'}")
    # The first request is the control's preflight (sent before k6 starts).
    _fill_timings(run, started, watch, exited, _arrivals(server, started)[1:])
    journal = json.loads(journal_path.read_text())
    result = journal["chaosray"]["k6"]
    run.requests = int(result["requests"])
    run.extra["k6_status"] = result["status"]
    run.extra["journal_status"] = journal["status"]
    wait = next(r for r in journal["run"] if r["activity"]["name"] == "wait")
    pause_end = datetime.fromisoformat(wait["end"]).timestamp() + args.duration
    run.extra["pause_end_to_k6_exit_s"] = (watch.k6_exited_at or exited) - pause_end
    output = results / "k6-output.json.gz"
    run.extra["output_bytes"] = output.stat().st_size
    parse_started = time.perf_counter()
    stats = read_k6_output(output)
    stats.summary()
    stats.timeline()
    json.loads((results / "k6-summary.json").read_text())
    run.extra["parse_s"] = time.perf_counter() - parse_started
    return run


def _median(runs: list[Run], value: Callable[[Run], float | None]) -> float | None:
    values = [v for v in (value(r) for r in runs) if v is not None]
    return statistics.median(values) if values else None


def report(args: argparse.Namespace, runs: dict[str, list[Run]]) -> None:
    names = list(runs)
    alone, control = "k6 alone", "k6 + control"

    def seconds(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f} s"

    def count(v: float | None) -> str:
        return "n/a" if v is None else f"{v:,.0f}"

    def per_s(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}/s"

    def extra(key: str) -> Callable[[Run], float | None]:
        return lambda r: r.extra.get(key)

    # (label, format, value, show control/alone, show control - alone)
    rows: list[
        tuple[str, Callable[[float | None], str], Callable[[Run], float | None], bool, bool]
    ] = [
        ("wall time (command start to exit)", seconds, lambda r: r.wall_s, True, True),
        ("  start -> k6 process started", seconds, lambda r: r.to_k6_start_s, False, True),
        ("  k6 started -> first request", seconds, lambda r: r.to_first_request_s, True, True),
        ("  pause end -> k6 exit", seconds, extra("pause_end_to_k6_exit_s"), False, False),
        ("  last request -> k6 exit", seconds, lambda r: r.last_request_to_k6_exit_s, True, True),
        ("  k6 exit -> command exit", seconds, lambda r: r.k6_exit_to_exit_s, False, True),
        ("  result parsing (re-timed here)", seconds, extra("parse_s"), False, False),
        ("k6 CPU (psutil samples)", seconds, lambda r: r.k6_cpu_sampled_s, True, True),
        ("k6 CPU (exact, rusage)", seconds, lambda r: r.k6_cpu_exact_s, False, False),
        ("CPU of all started (rusage)", seconds, lambda r: r.children_cpu_s, True, True),
        ("requests (k6 summary)", count, lambda r: float(r.requests), True, True),
        ("requests served (server log)", count, lambda r: float(r.served), True, True),
        ("achieved rate (arrivals)", per_s, lambda r: r.achieved_rate, True, False),
        ("k6 CPU per 1000 requests", seconds,
         lambda r: 1000 * r.k6_cpu_sampled_s / r.requests, True, True),
        ("JSON output size (MiB)", lambda v: "n/a" if v is None else f"{v / 2**20:.2f}",
         extra("output_bytes"), False, False),
    ]  # fmt: skip
    header = (
        f"{'figure':<36}"
        + "".join(f"{n:>17}" for n in names)
        + f"{'control/alone':>15}{'control-alone':>15}"
    )
    print(header)
    print("-" * len(header))
    for label, show, value, with_ratio, with_difference in rows:
        medians = {n: _median(runs[n], value) for n in names}
        line = f"{label:<36}" + "".join(f"{show(medians[n]):>17}" for n in names)
        a, c = medians.get(alone), medians.get(control)
        if a is not None and c is not None:
            line += f"{c / a:>15.2f}" if with_ratio and a else f"{'':>15}"
            line += f"{show(c - a):>15}" if with_difference else ""
        print(line)
    print("(process start times are read to the clock tick: +-10 ms)")
    if args.repeat > 1:
        print(f"(medians of {args.repeat} runs of each)")
    a_runs, c_runs = runs[alone], runs[control]
    added = _median(c_runs, lambda r: r.wall_s - args.duration)
    base = _median(a_runs, lambda r: r.wall_s - args.duration)
    print(
        f"\ntime around the {args.duration:g} s of load: alone {seconds(base)}, "
        f"under the control {seconds(added)}"
    )
    exit_codes = {
        n: sorted({r.exit_code for r in rs if r.exit_code is not None}) for n, rs in runs.items()
    }
    statuses = sorted({f"{r.extra['journal_status']}/{r.extra['k6_status']}" for r in c_runs})
    print(f"exit codes: {exit_codes}; experiment/k6 status under the control: {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50, help="requests per second")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (median)")
    parser.add_argument(
        "--no-json-variant", action="store_true", help="skip the 'k6 alone + JSON' diagnostic"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    # A SIGTERM ends the run like Ctrl-C: the finally blocks stop what was started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    work = Path(tempfile.mkdtemp(prefix="chaosray-k6-bench-"))
    server: ScheduledServer | None = None
    runs: dict[str, list[Run]] = {"k6 alone": []}
    if not args.no_json_variant:
        runs["k6 alone + JSON"] = []
    runs["k6 + control"] = []
    try:
        server = start_scheduled_server(work)
        print(
            f"k6_control_bench: {args.rate}/s for {args.duration} s against the scheduled server "
            f"({server.url}{PATH}); "
            f"{os.cpu_count()} CPUs\n"
        )
        for i in range(args.repeat):
            runs["k6 alone"].append(run_alone(server, args, work / f"alone-{i}", json_out=False))
            if not args.no_json_variant:
                runs["k6 alone + JSON"].append(
                    run_alone(server, args, work / f"alone-json-{i}", json_out=True)
                )
            runs["k6 + control"].append(run_control(server, args, work / f"control-{i}"))
        report(args, runs)
    finally:
        killed = _kill_seen_k6()
        if killed:
            print(f"killed k6 left running: {killed}")
        if server is not None:
            server.stop()
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted")
