"""The ``chaosray`` command: ``chaosray suite run`` runs the whole suite."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslib.exceptions import ActivityFailed
from rich.console import Console

from chaosray import __version__

if TYPE_CHECKING:
    from chaosray.lab import layout


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosray",
        description=(
            "Chaos experiments for Ray Serve on Kubernetes (KubeRay). Run single "
            "experiments with `chaos run experiments/<name>.json`, or all of them with "
            "`chaosray suite run`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chaosray {__version__}")
    commands = parser.add_subparsers(dest="command")
    suite = commands.add_parser("suite", help="the whole suite")
    suite_commands = suite.add_subparsers(dest="suite_command")
    run = suite_commands.add_parser(
        "run",
        help="pre-validation, every scenario, post-validation; reports in a results folder",
        description=(
            "Run pre-validation, the scenarios and post-validation against the cluster of "
            "the current kubeconfig (KUBECONFIG, KUBERNETES_CONTEXT). Exits 0 only when "
            "every experiment passed; 130 after Ctrl-C, 143 after SIGTERM (once the "
            "running experiment has stopped with its rollbacks, cleaned up and reported)."
        ),
    )
    run.add_argument(
        "--experiments",
        type=_csv,
        default=None,
        help="comma-separated names (default: all, in order)",
    )
    run.add_argument(
        "--experiments-dir",
        type=Path,
        default=None,
        help="where the experiment files are (default: the shipped experiments/)",
    )
    run.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="parent of the timestamped results folder (default: results)",
    )
    run.add_argument(
        "--var-file",
        type=Path,
        action="append",
        default=[],
        help="Chaos Toolkit var file (JSON/YAML configuration and secrets); repeatable",
    )
    run.add_argument("--namespace", help="namespace of the Ray Serve service")
    run.add_argument("--ray-cluster", help="RayCluster name")
    run.add_argument("--inference-url", help="endpoint URL (default: the NLB Service's address)")
    run.add_argument("--nlb-service", help="the LoadBalancer Service in front of Serve")
    run.add_argument("--load-rate", type=int, help="k6 requests per second")
    run.add_argument("--load-mode", choices=["local", "job", "operator"], help="where k6 runs")
    run.add_argument("--monitor-rate", type=float, help="availability monitor requests/s")
    run.add_argument("--baseline-s", type=float, help="seconds of baseline before a disruption")
    run.add_argument("--observe-s", type=float, help="seconds of observation after it")
    run.add_argument("--min-success-rate", type=float, help="verdict: lowest success rate (0..1)")
    run.add_argument(
        "--allowed-contexts",
        type=_csv,
        help="kube contexts destructive actions may run in (comma-separated)",
    )
    run.add_argument(
        "--run-scenarios-after-failed-prevalidation",
        action="store_true",
        help="run the scenarios even when pre-validation failed",
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each disruptive scenario N times (medians and spreads in the report)",
    )
    run.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a results folder of an earlier run to compare this one with",
    )
    _comparison_arguments(run)
    compare = commands.add_parser(
        "compare",
        help="compare two results folders: what changed, and is it significant",
        description=(
            "Per scenario, the change from RESULTS_A (the baseline) to RESULTS_B in failure "
            "rate, p99 latency, outage time and each recovery time. The run is the unit: "
            "Welch's t-test on the per-run values (2 or more runs a side, from suite run "
            "--repeat), p-values adjusted together (Benjamini-Hochberg). Request-level "
            "tests (Fisher's exact test, a p99 bootstrap) are shown: they say whether the "
            "runs differ, not whether the code does. Exits 0, or 1 with "
            "--fail-on-regression when a change is significant and worse; 2 on bad input "
            "or when --fail-on-regression has too few runs to judge."
        ),
    )
    compare.add_argument("baseline_folder", type=Path, metavar="RESULTS_A")
    compare.add_argument("current_folder", type=Path, metavar="RESULTS_B")
    compare.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    compare.add_argument("--junit", type=Path, help="also write it as JUnit XML here")
    _comparison_arguments(compare)
    lab = commands.add_parser(
        "lab",
        help="a real Kubernetes on this machine (root): up, down, status",
        description=(
            "The lab: a control plane, the KubeRay operator and 4 real nodes (kubelet, "
            "containerd, runc) in a network namespace with no way out, with the reference "
            "deployment (deploy/lab/). Needs root and the binaries and images of "
            "`make lab-binaries lab-image`. See docs/lab.md."
        ),
    )
    lab.add_argument("--name", default="chaoslab", help="the lab's name (default: chaoslab)")
    lab_commands = lab.add_subparsers(dest="lab_command")
    lab_up = lab_commands.add_parser(
        "up", help="start (or finish starting) the lab; prints the kubeconfig and inference URL"
    )
    lab_up.add_argument(
        "--no-deploy", action="store_true", help="nodes only, no reference deployment"
    )
    lab_demo = lab_commands.add_parser(
        "demo",
        help="bring the lab up (if it is not) and run the whole suite on it with the "
        "short-timing profile (experiments/profiles/short.json); prints the report's path",
    )
    lab_demo.add_argument(
        "--results-dir", type=Path, default=Path("results"),
        help="where the suite writes its results folder (default: ./results)",
    )  # fmt: skip
    lab_commands.add_parser("down", help="stop everything and undo every change to the machine")
    lab_commands.add_parser(
        "status", help="what runs and what does not (exit 1 if anything is down)"
    )
    shipped = commands.add_parser(
        "experiments", help="the experiments shipped with the package (for `chaos run`)"
    )
    shipped_commands = shipped.add_subparsers(dest="experiments_command")
    shipped_commands.add_parser("path", help="print the folder that holds them")
    shipped_commands.add_parser("list", help="print each experiment file, in suite order")
    return parser


def _comparison_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a change is significant and worse (needs 2 or more runs of "
        "each scenario on each side)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="significance level (default: 0.05)"
    )


def _compare(args: argparse.Namespace, console: Console) -> int:
    from chaosray.report import render_json
    from chaosray.report.compare import render_comparison_junit, too_few_runs_message
    from chaosray.report.render import render_comparison_console
    from chaosray.suite.results import ResultsError, compare_folders

    try:
        comparison = compare_folders(args.baseline_folder, args.current_folder, alpha=args.alpha)
    except (ResultsError, ValueError) as exc:
        console.print(f"[red]chaosray: {exc}[/]", highlight=False, soft_wrap=True)
        return 2
    console.out(render_comparison_console(comparison, color=console.is_terminal))
    unjudged = too_few_runs_message(comparison) if args.fail_on_regression else None
    try:
        if args.json:
            args.json.write_text(render_json(comparison))
        if args.junit:
            args.junit.write_text(render_comparison_junit(comparison))
    except OSError as exc:
        console.print(f"[red]chaosray: cannot write {exc.filename}: {exc.strerror}[/]",
                      highlight=False, soft_wrap=True)  # fmt: skip
        return 2
    if unjudged:
        console.print(f"[red]chaosray: {unjudged}[/]", highlight=False, soft_wrap=True)
        return 2
    return 1 if comparison["regressed"] and args.fail_on_regression else 0


OVERRIDES = {
    "namespace": "namespace",
    "ray_cluster": "ray_cluster",
    "inference_url": "inference_url",
    "nlb_service": "nlb_service",
    "load_rate": "load_rate",
    "load_mode": "load_mode",
    "monitor_rate": "monitor_rate",
    "baseline_s": "baseline_s",
    "observe_s": "observe_s",
    "min_success_rate": "min_success_rate",
    "allowed_contexts": "chaosray_allowed_contexts",
}


def _suite_run(args: argparse.Namespace, console: Console) -> int:
    from chaosray.guard import check_range
    from chaosray.k8s.client import resolve_target
    from chaosray.suite.preflight import (
        PreflightFailed,
        check_cluster,
        check_context,
        effective_configuration,
    )
    from chaosray.suite.runner import ALL, Suite, SuiteOptions

    configuration: dict[str, Any] = {
        key: getattr(args, option)
        for option, key in OVERRIDES.items()
        if getattr(args, option) is not None
    }
    for key, value in configuration.items():
        problem = check_range(key, value)
        if problem:
            console.print(f"[red]chaosray: --{key.replace('_', '-')}: {problem}[/]", soft_wrap=True)
            return 2
    options = SuiteOptions(
        experiments=args.experiments or list(ALL),
        results_dir=args.results_dir,
        var_files=args.var_file,
        configuration=configuration,
        skip_on_failed_prevalidation=not args.run_scenarios_after_failed_prevalidation,
        repeat=args.repeat,
        baseline=args.baseline,
        fail_on_regression=args.fail_on_regression,
        alpha=args.alpha,
    )
    if args.experiments_dir is not None:
        options.experiments_dir = args.experiments_dir
    suite = Suite(options, console)
    try:
        suite.check()
        target = resolve_target()
        effective = effective_configuration(
            options.experiments_dir, options.var_files, configuration
        )
        check_context(target, effective)
        check_cluster(target, effective)
    except (ValueError, ActivityFailed, PreflightFailed) as exc:
        console.print(f"[red]chaosray: {exc}[/]", highlight=False, soft_wrap=True)
        return 2
    console.print(f"Cluster: {target.context or target.host} ({target.source})")
    return suite.run()


def _experiments(args: argparse.Namespace) -> int:
    from chaosray.suite.runner import ALL, default_experiments_dir

    folder = default_experiments_dir()
    if args.experiments_command == "path":
        print(folder)
    else:
        for name in ALL:
            print(folder / f"{name}.json")
    return 0


def _lab(args: argparse.Namespace, console: Console) -> int:
    from chaosray.lab import lab, layout
    from chaosray.lab.host import LabError

    where = layout.Lab(name=args.name)
    try:
        if args.lab_command == "up":
            result = lab.up(where, lambda line: console.print(line, soft_wrap=True),
                            deploy=not args.no_deploy)  # fmt: skip
            for key, value in result.items():
                console.print(f"{key}: {value}", soft_wrap=True)
            if "kubeconfig" in result:
                console.print(
                    f"export KUBECONFIG={result['kubeconfig']} "
                    f"CHAOSRAY_INFERENCE_URL={result['inference_url']}",
                    soft_wrap=True,
                )
            return 0
        if args.lab_command == "down":
            lab.down(where, lambda line: console.print(line, soft_wrap=True))
            return 0
        if args.lab_command == "demo":
            return _lab_demo(where, args.results_dir, console)
        lab.require_root()
        rows = lab.status(where)
        for part, ok, detail in rows:
            console.print(
                f"{'ok  ' if ok else 'DOWN'} {part:22} {detail}", soft_wrap=True, markup=False
            )
        return 0 if all(ok for _, ok, _ in rows) else 1
    except LabError as exc:
        console.print(f"error: {exc}", soft_wrap=True, markup=False, style="red")
        return 2
    except KeyboardInterrupt:
        console.print("interrupted: run `chaosray lab down` to remove what was started")
        return 130


def _lab_demo(where: layout.Lab, results_dir: Path, console: Console) -> int:
    """The suite against the lab, as a newcomer's first run (README)."""
    import subprocess

    from chaosray.lab import lab
    from chaosray.suite.runner import default_experiments_dir

    result = lab.up(where, lambda line: console.print(line, soft_wrap=True))
    profile = default_experiments_dir() / "profiles" / "short.json"
    console.print(
        f"Running the suite on the lab ({profile.name}: short baselines and observations)",
        soft_wrap=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSRAY_")}
    env["KUBECONFIG"] = result["kubeconfig"]
    done = subprocess.run(
        [sys.executable, "-m", "chaosray.cli", "suite", "run", "--var-file", str(profile),
         "--inference-url", result["inference_url"], "--results-dir", str(results_dir)],
        env=env, check=False,
    )  # fmt: skip
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "suite" and getattr(args, "suite_command", None) == "run":
        return _suite_run(args, console)
    if args.command == "compare":
        return _compare(args, console)
    if args.command == "experiments" and getattr(args, "experiments_command", None):
        return _experiments(args)
    if args.command == "lab" and getattr(args, "lab_command", None):
        return _lab(args, console)
    if args.command == "lab":
        parser.parse_args(["lab", "--help"])
    if args.command == "suite":
        parser.parse_args(["suite", "--help"])
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
