"""Saved results folders (what ``chaosray suite run`` writes), read back for
``chaosray compare`` and ``suite run --baseline``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaosray.report.compare import compare_suites
from chaosray.report.suite import SUITE_SCHEMA

__all__: list[str] = []  # the suite is a command, not activities

SUMMARY = "summary.json"


class ResultsError(ValueError):
    """A results folder that cannot be read (the message names it and why)."""


def samples_file(experiment: dict[str, Any]) -> str:
    """The samples file of an experiment summary, relative to its folder
    (results written before the suite recorded it: ``<name>.samples.jsonl``)."""
    files = experiment.get("files")
    if isinstance(files, dict) and isinstance(files.get("samples"), str):
        return str(files["samples"])
    return f"{experiment['name']}.samples.jsonl"


def load_summary(folder: Path) -> dict[str, Any]:
    path = folder / SUMMARY
    if not folder.is_dir():
        raise ResultsError(f"results folder {folder} does not exist")
    if not path.is_file():
        inner = sorted(p.name for p in folder.iterdir() if (p / SUMMARY).is_file())
        hint = f" (it holds runs: {', '.join(inner[-3:])}; give one of them)" if inner else ""
        raise ResultsError(f"{folder} is not a results folder: no {SUMMARY}{hint}")
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path} cannot be read: {exc}") from None
    if not isinstance(suite, dict) or suite.get("schema") != SUITE_SCHEMA:
        raise ResultsError(f"{path} is not a {SUITE_SCHEMA} document")
    return suite


def load_latencies(folder: Path, suite: dict[str, Any]) -> dict[str, list[list[float]]]:
    """Per experiment name, one list per run (in run order) of the latencies
    (ms) of its successful requests, from the availability monitor's
    samples files (a run without one is left out)."""
    out: dict[str, list[list[float]]] = {}
    for experiment in suite.get("experiments") or []:
        path = folder / samples_file(experiment)
        if not path.is_file():
            continue
        values: list[float] = []
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    sample = json.loads(line)
                except ValueError:
                    continue  # a line cut off when the run was interrupted
                if not isinstance(sample, dict):
                    continue
                latency = sample.get("latency")
                if sample.get("ok") and isinstance(latency, int | float) and latency >= 0:
                    values.append(latency * 1000.0)
        out.setdefault(experiment["name"], []).append(values)
    return out


def compare_folders(
    baseline: Path,
    current: Path,
    *,
    alpha: float = 0.05,
    current_suite: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The comparison of two results folders (``current_suite``: the current
    run's document when it is not written yet)."""
    base_suite = load_summary(baseline)
    now_suite = current_suite if current_suite is not None else load_summary(current)
    comparison = compare_suites(
        base_suite,
        now_suite,
        load_latencies(baseline, base_suite),
        load_latencies(current, now_suite),
        alpha=alpha,
    )
    comparison["baseline"]["folder"] = str(baseline)
    comparison["current"]["folder"] = str(current)
    return comparison
