"""Reading Chaos Toolkit journals: time stamps, run entries, and the fix-up
that keeps ``chaos report`` working on interrupted experiments.

Pure functions: they read (and, for :func:`mark_interrupted_runs`, amend) the
dicts they are given and do no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

__all__: list[str] = []  # pure logic, no activities

INTERRUPTED_MESSAGE = (
    "chaosray: the activity was cut off by a signal (Ctrl-C or SIGTERM) before it "
    "ended; it has no result\n"
)
# Set on a run entry that mark_interrupted_runs completed.
INTERRUPTED_FLAG = "chaosray_interrupted"
MAX_VALUE_CHARS = 2000
ACTIVITY_FAILED_PREFIX = "chaoslib.exceptions.ActivityFailed:"
# The exception classes whose names chaoslib writes before an activity's message.
ERROR_PREFIXES = (ACTIVITY_FAILED_PREFIX, "chaosray.contract.RecoveryTimeout:")


def epoch(value: Any) -> float | None:
    """Epoch seconds from a number or an ISO 8601 / RFC 3339 string (a string
    without a zone is UTC, as chaoslib wrote it before 1.40); ``None`` when
    absent or unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(seconds: float | None) -> str | None:
    """RFC 3339 in UTC with microseconds, or ``None``."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def number(value: Any) -> float | None:
    """A finite float, or ``None`` (booleans, strings, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def provider_of(entry: dict[str, Any]) -> dict[str, Any]:
    activity = entry.get("activity")
    if not isinstance(activity, dict):
        return {}
    provider = activity.get("provider")
    return provider if isinstance(provider, dict) else {}


def activity_name(entry: dict[str, Any]) -> str:
    activity = entry.get("activity")
    if isinstance(activity, dict) and activity.get("name"):
        return str(activity["name"])
    return "(unnamed activity)"


def func_of(entry: dict[str, Any]) -> str | None:
    """``module.func`` of a Python provider, the func alone when the module is
    missing, ``None`` for other providers."""
    provider = provider_of(entry)
    func = provider.get("func")
    if not isinstance(func, str):
        return None
    module = provider.get("module")
    return f"{module}.{func}" if isinstance(module, str) else func


def short_func(entry: dict[str, Any]) -> str | None:
    func = provider_of(entry).get("func")
    return func if isinstance(func, str) else None


def is_interrupted(entry: dict[str, Any]) -> bool:
    """A run entry cut off by a signal: chaoslib never set its status (or
    :func:`mark_interrupted_runs` marked it)."""
    return "status" not in entry or bool(entry.get(INTERRUPTED_FLAG))


def last_error_line(entry: dict[str, Any]) -> str | None:
    """The last non-empty line of a run entry's exception (the message)."""
    exception = entry.get("exception")
    if isinstance(exception, str):
        exception = [exception]
    if not isinstance(exception, list):
        return None
    lines = "".join(str(part) for part in exception).strip().splitlines()
    if not lines:
        return None
    line = lines[-1].strip()
    # chaoslib repeats the class when re-raising
    while prefix := next((p for p in ERROR_PREFIXES if line.startswith(p)), None):
        line = line[len(prefix) :].strip()
    return line or None


def short_value(value: Any, limit: int = 200) -> str:
    """A one-line rendering of a probe's output for a message."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_value(value: Any) -> Any:
    """The value itself when its JSON is at most ``MAX_VALUE_CHARS`` long,
    else its truncated JSON text (keeps a report small whatever a probe returned)."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)[:MAX_VALUE_CHARS]
    if len(text) <= MAX_VALUE_CHARS:
        return json.loads(text)
    return text[: MAX_VALUE_CHARS - 3] + "..."


def iter_entries(journal: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every activity record of a journal with its phase: ``steady_state_before``,
    ``method`` (``run``), ``control`` (run entries our controls add),
    ``steady_state_after``, ``steady_state_during``, ``rollback``."""
    steady = journal.get("steady_states")
    steady = steady if isinstance(steady, dict) else {}
    phases: list[tuple[str, Any]] = [
        ("steady_state_before", (steady.get("before") or {}).get("probes")),
        ("method", journal.get("run")),
        ("steady_state_after", (steady.get("after") or {}).get("probes")),
        ("steady_state_during", _during_probes(steady.get("during"))),
        ("rollback", journal.get("rollbacks")),
    ]
    for phase, entries in phases:
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if phase == "method" and str(provider_of(entry).get("module", "")).endswith(".control"):
                yield "control", entry
            else:
                yield phase, entry


def _during_probes(during: Any) -> list[dict[str, Any]]:
    if not isinstance(during, list):
        return []
    probes: list[dict[str, Any]] = []
    for state in during:
        if isinstance(state, dict) and isinstance(state.get("probes"), list):
            probes.extend(p for p in state["probes"] if isinstance(p, dict))
    return probes


def mark_interrupted_runs(journal: dict[str, Any]) -> int:
    """Complete the run entries of activities that a signal cut off, so every
        entry has what the journal's readers (``chaos report`` among them) expect.

        When Ctrl-C (``KeyboardInterrupt``) or SIGTERM (``InterruptExecution``)
        reaches chaoslib while an activity runs, chaoslib keeps that activity's run
        entry (it is appended when the activity starts) and sets its ``end`` and
        ``duration`` in a ``finally``, but never its ``status``: only success and
        ``ActivityFailed`` set one. ``chaos report`` (chaostoolkit-reporting 0.18)
        then fails with ``KeyError: 'status'`` in
        ``generate_chart_from_metric_probes``.

        Each entry of ``run``, ``rollbacks`` and the steady-state probes that has
        no ``status`` gets ``status: "failed"`` (the journal format knows only
        ``succeeded`` and ``failed``), an ``exception`` saying it was interrupted
        (unless it has one), ``chaosray_interrupted: true``, and ``end`` /
        ``start`` / ``end`` / ``duration`` when those are missing too (the
    journal's start, its own start, 0 s). Idempotent;
        returns how many entries it completed. Call it from an
        ``after_experiment_control`` (the journal is still in memory then).
    """
    fixed = 0
    for _phase, entry in iter_entries(journal):
        if "status" in entry:
            continue
        entry["status"] = "failed"
        entry[INTERRUPTED_FLAG] = True
        if not entry.get("exception"):
            entry["exception"] = [INTERRUPTED_MESSAGE]
        if not entry.get("start"):
            entry["start"] = entry.get("end") or journal.get("start") or journal.get("end")
        if not entry.get("end"):
            entry["end"] = entry.get("start")
        if entry.get("duration") is None:
            start, end = epoch(entry.get("start")), epoch(entry.get("end"))
            entry["duration"] = max(0.0, end - start) if start is not None and end else 0.0
        fixed += 1
    return fixed


def add_control_entry(
    journal: dict[str, Any],
    *,
    name: str,
    module: str,
    func: str,
    arguments: dict[str, Any],
    output: Any,
    started_at: float,
    ended_at: float,
    failure: str | None = None,
) -> None:
    """Record what a control measured as a run entry that ``chaos report``
    shows like an activity's (failed, with ``failure`` as its exception, when
    given). ``secrets`` never goes into the journal."""
    entry: dict[str, Any] = {
        "activity": {
            "type": "probe",
            "name": name,
            "provider": {
                "type": "python",
                "module": module,
                "func": func,
                "arguments": {k: v for k, v in arguments.items() if k != "secrets"},
            },
        },
        "output": output,
        "start": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "end": datetime.fromtimestamp(ended_at, UTC).isoformat(),
        "duration": ended_at - started_at,
        "status": "failed" if failure else "succeeded",
    }
    if failure:
        entry["exception"] = [failure if failure.endswith("\n") else failure + "\n"]
    journal.setdefault("run", []).append(entry)
