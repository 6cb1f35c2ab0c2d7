"""Ctrl-C, however often: what chaosray does on SIGINT and SIGTERM.

Chaos Toolkit turns the first Ctrl-C into an interruption: the method stops,
the rollbacks run, the controls finish and the journal is written. A second
Ctrl-C while that happens would raise again out of the rollbacks, and
``chaos run`` would end with "Aborted!", no journal, and whatever chaosray had
cordoned still cordoned.

So while an experiment with a chaosray control runs:
- the **first** signal stops the availability monitors at once (Chaos Toolkit
  waits for background activities after an interruption, so a monitor would
  otherwise keep sending requests for its whole duration), then goes on as
  Chaos Toolkit's own handling (KeyboardInterrupt for Ctrl-C);
- **every further** signal does not interrupt again: it stops the load (the
  monitors, local k6 runs and in-cluster k6 runs) and uncordons the nodes
  chaosray cordoned, right away, says so, and lets the rollbacks and the
  journal finish.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from chaoslib.types import Configuration, Secrets

__all__: list[str] = []  # helpers of the controls, not activities

logger = logging.getLogger("chaostoolkit")

_previous: dict[int, Any] = {}
_state: dict[str, Any] = {"count": 0, "configuration": None, "secrets": None}
_lock = threading.Lock()


def hook(configuration: Configuration = None, secrets: Secrets = None) -> None:
    """Install the handlers for this experiment (idempotent; main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        if configuration is not None:
            _state["configuration"] = configuration
        if secrets is not None:
            _state["secrets"] = secrets
        if _previous:
            return
        _state["count"] = 0
        for signum in (signal.SIGINT, signal.SIGTERM):
            _previous[signum] = signal.signal(signum, _on_signal)


def unhook() -> None:
    """Put back the handlers that were there before :func:`hook`."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        for signum, previous in list(_previous.items()):
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, previous)
            del _previous[signum]
        _state.update(count=0, configuration=None, secrets=None)


def signals_seen() -> int:
    return int(_state["count"])


def _on_signal(signum: int, frame: Any) -> None:
    _state["count"] += 1
    if _state["count"] == 1:
        _stop_monitors(signum)
        previous = _previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        return
    logger.warning(
        f"signal {signum} again: stopping the load and uncordoning what chaosray "
        "cordoned now; the rollbacks and the journal finish (not interrupted again)"
    )
    for what, step in _emergency_steps():
        try:
            logger.warning(f"  {what}: {step()}")
        except Exception as exc:  # say it, and go on with the next step
            logger.error(f"  {what} failed: {exc}")


def _stop_monitors(signum: int) -> None:
    from chaosray.load.monitor import stop_all_monitors

    stopped = stop_all_monitors()
    if stopped:
        logger.warning(f"stopped {stopped} availability monitor(s) on signal {signum}")


def _emergency_steps() -> list[tuple[str, Callable[[], Any]]]:
    from chaosray.k8s.actions import uncordon_all
    from chaosray.load.k6 import stop_all_local_runs
    from chaosray.load.k6_cluster import stop_all_cluster_runs
    from chaosray.load.monitor import stop_all_monitors

    configuration, secrets = _state["configuration"], _state["secrets"]
    return [
        ("availability monitors stopped", stop_all_monitors),
        ("local k6 runs stopped", stop_all_local_runs),
        ("in-cluster k6 runs deleted", stop_all_cluster_runs),
        (
            "nodes uncordoned",
            lambda: uncordon_all(configuration=configuration, secrets=secrets),
        ),
    ]
