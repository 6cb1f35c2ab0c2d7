"""``chaosray suite run``: pre-validation, every scenario, post-validation.

Each experiment runs through Chaos Toolkit itself (``chaos run``, in a
process of its own), so what the suite does is exactly what a user gets
running the files one by one. The suite keeps each journal and log in a
timestamped results folder, continues past a failed scenario, always runs
post-validation, shows progress, writes the reports, and exits 0 only if
every experiment passed.

Ctrl-C (SIGINT) and SIGTERM (how CI systems and Kubernetes Jobs cancel a
run) are handled alike: the suite forwards the one signal to the running
``chaos run`` (its process group), which stops the experiment as Ctrl-C does
(:mod:`chaosray.interrupts`: its rollbacks and its controls' cleanup run, its
journal is written, its verdict is ``interrupted``), waits for it (at most
:data:`STOP_GRACE_S`, then kills it), skips the experiments not run yet, cleans
up what chaosray may have left (nodes it cordoned, its load Jobs and
ConfigMaps), writes the reports so far, and exits 128 + the signal's number:
130 after Ctrl-C, 143 after SIGTERM. Each ``chaos run`` also gets SIGTERM
should the suite itself die (``PR_SET_PDEATHSIG``), so it never outlives the
suite with its load.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from chaosray.contract import Verdict
from chaosray.judge import SKIPPED, judge

__all__: list[str] = []  # the suite is a command, not activities

logger = logging.getLogger("chaostoolkit")

PRE = "pre-validation"
POST = "post-validation"
SCENARIOS = [
    "worker-delete",
    "node-drain",
    "sequential-worker-delete",
    "redis-delete",
    "head-delete",
]
ALL = [PRE, *SCENARIOS, POST]
STOP_GRACE_S = 300.0  # Chaos Toolkit's rollbacks after a Ctrl-C may take a while
# The signals that stop the suite, as Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How the suite runs Chaos Toolkit: as a module of this very interpreter.
CHAOS = (sys.executable, "-m", "chaostoolkit")
# The suite's exit code when nothing broke but something was not measured, and
# the criteria asked for "inconclusive" (no_evidence_verdict).
EXIT_INCONCLUSIVE = 3


class ChaosNotStarted(RuntimeError):
    """Chaos Toolkit could not be started at all (the suite stops, exit 2)."""


def default_experiments_dir() -> Path:
    """The experiments shipped in the package (``chaosray/experiments``;
    ``experiments/`` of a source checkout links to it)."""
    return Path(__file__).resolve().parents[1] / "experiments"


@dataclass
class SuiteOptions:
    experiments: list[str] = field(default_factory=lambda: list(ALL))
    experiments_dir: Path = field(default_factory=default_experiments_dir)
    results_dir: Path = Path("results")
    var_files: list[Path] = field(default_factory=list)
    configuration: dict[str, Any] = field(default_factory=dict)
    skip_on_failed_prevalidation: bool = True
    env: dict[str, str] = field(default_factory=dict)
    # Each disruptive scenario this many times (the report gives medians and spreads).
    repeat: int = 1
    # A results folder to compare this run with (chaosray.report.compare).
    baseline: Path | None = None
    fail_on_regression: bool = False
    alpha: float = 0.05


@dataclass
class ExperimentRun:
    name: str
    journal_path: Path
    log_path: Path
    returncode: int | None = None
    journal: dict[str, Any] | None = None
    skipped: str | None = None
    interrupted: bool = False
    repeat: int | None = None  # which run of a repeated scenario (1..N)

    @property
    def samples_path(self) -> Path:
        """The availability monitor's samples, beside the journal."""
        return self.journal_path.with_name(
            self.journal_path.name.removesuffix(".journal.json") + ".samples.jsonl"
        )

    @property
    def judged_journal(self) -> dict[str, Any]:
        """The journal to judge: chaos's, or for a run that left none (skipped,
        or chaos died) one that says why."""
        if self.journal is not None and not self.skipped:
            return self.journal
        why = self.skipped or f"no journal (chaos exited {self.returncode})"
        status = SKIPPED if self.skipped else "interrupted" if self.interrupted else "failed"
        return {
            "experiment": {"title": self.name},
            "status": status,
            "chaosray": {"verdict": {"passed": False, "reasons": [why]}},
        }

    @property
    def verdict(self) -> Verdict:
        return judge(self.judged_journal)


class Suite:
    def __init__(self, options: SuiteOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.folder = options.results_dir / stamp
        self.runs: list[ExperimentRun] = []
        self.started = datetime.now(UTC)
        self._child: subprocess.Popen[str] | None = None
        self._signalled: subprocess.Popen[str] | None = None  # the child the signal reached
        self._interrupted = threading.Event()
        self._signum: int | None = None  # the signal that interrupted the suite

    # --- set-up ---------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse to start on bad input, before anything runs."""
        unknown = [n for n in self.options.experiments if n not in ALL]
        if unknown:
            raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
        for name in self.options.experiments:
            path = self.options.experiments_dir / f"{name}.json"
            if not path.is_file():
                raise ValueError(f"experiment file {path} does not exist (--experiments-dir)")
        for var_file in self.options.var_files:
            if not var_file.is_file():
                raise ValueError(f"var file {var_file} does not exist")
        if not isinstance(self.options.repeat, int) or not 1 <= self.options.repeat <= 100:
            raise ValueError(f"--repeat must be between 1 and 100, got {self.options.repeat!r}")
        if not 0 < self.options.alpha < 1:
            raise ValueError(f"--alpha must be between 0 and 1, got {self.options.alpha!r}")
        if importlib.util.find_spec("chaostoolkit") is None:
            raise ValueError(
                f"Chaos Toolkit is not installed for {sys.executable}: "
                "pip install chaostoolkit-ray installs it"
            )
        if self.options.fail_on_regression and self.options.baseline is None:
            raise ValueError("--fail-on-regression needs --baseline (the run to compare with)")
        if self.options.baseline is not None:
            from chaosray.suite.results import load_summary

            baseline = load_summary(self.options.baseline)  # refuses now, not after an hour
            if self.options.fail_on_regression:
                self._check_judgeable(baseline)

    def _check_judgeable(self, baseline: dict[str, Any]) -> None:
        """--fail-on-regression judges runs, not requests (chaosray.report.compare):
        refuse up front when either side will have too few runs of a scenario."""
        from chaosray.report.compare import MIN_RUNS_FOR_TEST

        if self.options.repeat < MIN_RUNS_FOR_TEST:
            raise ValueError(
                f"--fail-on-regression needs --repeat {MIN_RUNS_FOR_TEST} or more: one run "
                "of a scenario cannot tell a regression from run-to-run variation"
            )
        counts: dict[str, int] = {}  # runs that measured requests (not skipped)
        for experiment in baseline.get("experiments") or []:
            measured = bool((experiment.get("availability") or {}).get("requests"))
            counts[experiment["name"]] = counts.get(experiment["name"], 0) + measured
        short = [
            f"{name} ({counts[name]})"
            for name in self.options.experiments
            if name not in (PRE, POST) and name in counts and counts[name] < MIN_RUNS_FOR_TEST
        ]
        if short:
            raise ValueError(
                f"--fail-on-regression needs {MIN_RUNS_FOR_TEST} or more runs of each scenario "
                f"that measured requests in the baseline; {self.options.baseline} has too few "
                f"of: {', '.join(short)}"
            )

    def _vars_file(self, name: str) -> Path:
        """The suite's own overrides for experiment ``name``, as a var file
        with only the keys that experiment declares (chaosray.guard refuses
        keys no experiment knows)."""
        declared = (
            json.loads((self.options.experiments_dir / f"{name}.json").read_text()).get(
                "configuration"
            )
            or {}
        )
        path = self.folder / f"{name}.suite-vars.json"
        own = {k: v for k, v in self.options.configuration.items() if k in declared}
        path.write_text(json.dumps({"configuration": own}, indent=2))
        return path

    # --- running ----------------------------------------------------------------------------

    def run(self) -> int:
        self.check()
        self.folder.mkdir(parents=True, exist_ok=False)
        self.console.print(f"[bold]chaosray suite[/]: results in {self.folder}")
        # Installed until the reports are written: a signal during the cleanup
        # or the reports does not cut them short.
        previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        not_started = False
        try:
            for name, repeat in self._plan():
                if not_started:
                    self.runs.append(self._not_run(name, "not run: Chaos Toolkit did not start"))
                    continue
                if self._interrupted.is_set():
                    self.runs.append(
                        self._not_run(name, f"not run: the suite was interrupted ({self._why()})")
                    )
                    continue
                try:
                    self._run_one(name, repeat)
                except ChaosNotStarted as exc:
                    not_started = True
                    self.console.print(f"[red]chaosray: {exc}[/]", highlight=False, soft_wrap=True)
            if self._interrupted.is_set():
                self.console.print(f"[yellow]Interrupted ({self._why()}): cleaning up[/]")
                self.cleanup()
            regressed = self.write_reports()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        passed = all(r.verdict["passed"] for r in self.runs) and not self._interrupted.is_set()
        if not_started:
            return 2
        if self._interrupted.is_set():
            return 128 + int(self._signum or signal.SIGINT)  # 130 Ctrl-C, 143 SIGTERM
        if regressed and self.options.fail_on_regression:
            return 1
        if passed and self.runs:
            return 0
        not_passed = [r.verdict for r in self.runs if not r.verdict["passed"]]
        # Nothing broke, something was not measured, and the user chose to
        # call that inconclusive: neither 0 nor the 1 of a broken criterion.
        if self.runs and all(v.get("inconclusive") for v in not_passed):
            return EXIT_INCONCLUSIVE
        return 1

    def _plan(self) -> list[tuple[str, int | None]]:
        """(experiment, repeat) in run order: the disruptive scenarios
        ``repeat`` times each (one after the other), the validations once."""
        plan: list[tuple[str, int | None]] = []
        for name in self.options.experiments:
            if name in (PRE, POST) or self.options.repeat == 1:
                plan.append((name, None))
            else:
                plan.extend((name, k) for k in range(1, self.options.repeat + 1))
        return plan

    def _new_run(self, name: str, repeat: int | None = None) -> ExperimentRun:
        stem = name if repeat is None else f"{name}.r{repeat}"
        return ExperimentRun(
            name, self.folder / f"{stem}.journal.json", self.folder / f"{stem}.log", repeat=repeat
        )

    def _why(self) -> str:
        return signal.Signals(self._signum).name if self._signum else "SIGINT"

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._interrupted.is_set():
            return  # one signal reaches the experiment; it stops once, with its rollbacks
        self._signum = signum
        self._interrupted.set()
        self._forward()

    def _forward(self) -> None:
        """The interrupting signal to the running ``chaos run`` (its process
        group: it runs in a session of its own), once per child."""
        child, signum = self._child, self._signum
        if child is None or signum is None or self._signalled is child or child.poll() is not None:
            return
        self._signalled = child
        self.console.print(
            f"[yellow]{self._why()}: stopping the running experiment (its rollbacks run)[/]"
        )
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    def _not_run(self, name: str, reason: str) -> ExperimentRun:
        run = self._new_run(name)
        run.skipped = reason
        return run

    def _should_skip(self, name: str) -> str | None:
        if name in (PRE, POST) or not self.options.skip_on_failed_prevalidation:
            return None
        pre = next((r for r in self.runs if r.name == PRE), None)
        if pre is not None and not pre.verdict["passed"]:
            return "pre-validation failed; disruptive scenarios are not run on an unhealthy service"
        return None

    def _run_one(self, name: str, repeat: int | None = None) -> None:
        run = self._new_run(name, repeat)
        self.runs.append(run)
        label = name if repeat is None else f"{name} (run {repeat} of {self.options.repeat})"
        reason = self._should_skip(name)
        if reason:
            run.skipped = reason
            self.console.print(f"[yellow]- {label}: skipped ({reason})[/]")
            return
        samples = run.samples_path
        argv = [
            # chaos as a module of this interpreter: a --user or system
            # install puts the `chaos` script elsewhere than the interpreter.
            *CHAOS,
            # chaos otherwise asks releases.chaostoolkit.org for a newer
            # version before every experiment.
            "--no-version-check",
            "--log-file",
            str(run.log_path),
            "run",
            "--journal-path",
            str(run.journal_path),
            *[a for f in self.options.var_files for a in ("--var-file", str(f))],
            "--var-file",
            str(self._vars_file(name)),
            "--var",
            f"monitor_samples_path={samples}",
            str(self.options.experiments_dir / f"{name}.json"),
        ]
        started = time.monotonic()
        last_line = [f"{label}: starting"]

        def read(stream: Any) -> None:
            for line in stream:
                last_line[0] = line

        with self.console.status(last_line[0]) as status:
            try:
                self._child = subprocess.Popen(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env={**os.environ, **self.options.env},
                    start_new_session=True,  # our signal handler decides what reaches it
                    preexec_fn=_die_with_parent(),
                )
            except OSError as exc:
                raise ChaosNotStarted(
                    f"cannot start Chaos Toolkit ({' '.join(CHAOS)}): {exc.strerror or exc}"
                ) from None
            reader = threading.Thread(target=read, args=(self._child.stdout,), daemon=True)
            reader.start()
            interrupted_at: float | None = None
            while self._child.poll() is None:
                status.update(self._progress(label, last_line[0], samples, started))
                if self._interrupted.is_set():
                    # A signal that came while this child was being started.
                    self._forward()
                    if interrupted_at is None:
                        interrupted_at = time.monotonic()
                if interrupted_at is not None and time.monotonic() - interrupted_at > STOP_GRACE_S:
                    self.console.print(
                        f"[red]{label} did not stop within {STOP_GRACE_S:g}s of "
                        f"{self._why()}: killed[/]"
                    )
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self._child.pid, signal.SIGKILL)
                    self._child.wait(timeout=30)
                    break
                time.sleep(0.5)
            reader.join(timeout=5)
            run.returncode = self._child.returncode
            self._child = None
        run.interrupted = self._interrupted.is_set()
        if run.journal_path.exists():
            run.journal = json.loads(run.journal_path.read_text())
        verdict = run.verdict
        mark = "[green]passed[/]" if verdict["passed"] else "[red]failed[/]"
        self.console.print(
            f"{'✔' if verdict['passed'] else '✘'} {label}: {mark} "
            f"({time.monotonic() - started:.0f}s)"
        )
        for why in verdict["reasons"]:
            self.console.print(f"    {why['message']}")

    @staticmethod
    def _progress(name: str, line: str, samples: Path, started: float) -> str:
        """One status line: the scenario, what Chaos Toolkit is doing, and the
        live success rate of the availability monitor."""
        text = line.strip()
        if "] " in text:
            text = text.split("] ", 1)[1]
        rate = live_success_rate(samples)
        live = f" | success {rate[0]:.2%} of {rate[1]}" if rate else ""
        return f"{name} [{time.monotonic() - started:.0f}s]: {text[:90]}{live}"

    # --- after ------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Whatever chaosray may have left: its cordons, its load."""
        from chaosray.k8s.actions import uncordon_all
        from chaosray.load.k6 import stop_all_local_runs

        stop_all_local_runs()
        for what, action in self._cleanups(uncordon_all):
            try:
                result = action()
                self.console.print(f"  cleanup {what}: {result}")
            except Exception as exc:  # report, and go on with the next one
                self.console.print(f"[red]  cleanup {what} failed: {exc}[/]")

    def _cleanups(self, uncordon_all: Callable[..., Any]) -> list[tuple[str, Callable[[], Any]]]:
        steps: list[tuple[str, Callable[[], Any]]] = [("uncordon", lambda: uncordon_all())]
        from chaosray.load.k6_cluster import delete_leftover_runs

        # Every namespace: a load Job of ours is never wanted after the suite.
        steps.append(("load Jobs and ConfigMaps", lambda: delete_leftover_runs()))
        return steps

    def write_reports(self) -> bool:
        """Summary, JUnit, HTML and the console table; with a baseline, the
        comparison too. True when the comparison found a regression."""
        from chaosray import report
        from chaosray.report.compare import render_comparison_junit

        summaries = []
        for run in self.runs:
            journal = run.judged_journal
            samples_path = run.samples_path
            samples = _read_samples(samples_path) if samples_path.exists() else None
            summary = report.summarize_experiment(journal, samples, name=run.name)
            summary["repeat"] = run.repeat
            summary["files"] = {
                "journal": run.journal_path.name,
                "log": run.log_path.name,
                "samples": samples_path.name,
            }
            summaries.append(summary)
        suite = report.summarize_suite(
            summaries, self.started.isoformat(), datetime.now(UTC).isoformat()
        )
        suite["interrupted"] = self._interrupted.is_set()
        regressed = False
        if self.options.baseline is not None:
            from chaosray.suite.results import compare_folders

            try:
                comparison = compare_folders(
                    self.options.baseline, self.folder, alpha=self.options.alpha,
                    current_suite=suite,
                )  # fmt: skip
            except Exception as exc:  # the run's own reports are written all the same
                self.console.print(f"[red]No comparison: {exc}[/]", soft_wrap=True)
            else:
                suite["baseline_comparison"] = comparison
                regressed = bool(comparison["regressed"])
                (self.folder / "comparison.json").write_text(report.render_json(comparison))
                (self.folder / "comparison.junit.xml").write_text(
                    render_comparison_junit(comparison)
                )
        (self.folder / "summary.json").write_text(report.render_json(suite))
        (self.folder / "junit.xml").write_text(report.render_junit(suite))
        (self.folder / "report.html").write_text(report.render_html(suite))
        # Rendered at its own width: printed as is, never re-wrapped.
        self.console.out(report.render_console(suite, color=self.console.is_terminal))
        self.console.print(f"Reports: {self.folder}/summary.json, junit.xml, report.html")
        return regressed


def _die_with_parent() -> Callable[[], None] | None:
    """What the child ``chaos run`` calls before it starts: get SIGTERM if the
    suite dies (SIGKILL included), so it stops as on Ctrl-C and never outlives
    the suite. libc is looked up here, in the suite, so the child (forked from
    a process with threads) only makes the call."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no such guard
        return None
    sigterm = int(signal.SIGTERM)

    def set_death_signal() -> None:
        prctl(1, sigterm)  # PR_SET_PDEATHSIG

    return set_death_signal


def live_success_rate(samples: Path) -> tuple[float, int] | None:
    """Success rate so far from the monitor's samples file (None before any)."""
    try:
        with samples.open(encoding="utf-8") as lines:
            ok = total = 0
            for line in lines:
                if line.endswith("\n"):
                    total += 1
                    ok += '"ok": true' in line
    except FileNotFoundError:
        return None
    return (ok / total, total) if total else None


def _read_samples(path: Path) -> Iterator[dict[str, Any]]:
    """The monitor's samples, one dict a line, read lazily."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
