"""Ctrl-C and SIGTERM, however often: what chaosray does on SIGINT and SIGTERM.

Chaos Toolkit turns the first Ctrl-C into an interruption: the method stops,
the rollbacks run, the controls finish and the journal is written. A second
Ctrl-C while that happens would raise again out of the rollbacks, and
``chaos run`` would end with "Aborted!", no journal, and whatever chaosray had
cordoned still cordoned.

SIGTERM (how CI systems and Kubernetes Jobs cancel a run) gets no such
handling from Chaos Toolkit: chaoslib's handler (``chaoslib.exit.exit_signals``
/ ``_terminate_now``) raises ``InterruptExecution``, an ``Exception``. Raised
inside a Python activity, the provider (``chaoslib.provider.python``) turns it
into ``ActivityFailed``, or the activity's own ``except Exception`` (a watch
resuming after a dropped connection) swallows it; either way the method goes
on to its end, the journal says ``completed`` and ``chaos run`` exits 0. So
chaosray handles SIGTERM exactly as Ctrl-C instead.

While an experiment with a chaosray control runs:
- the **first** signal stops the availability monitors at once (Chaos Toolkit
  waits for background activities after an interruption, so a monitor would
  otherwise keep sending requests for its whole duration), records which
  signal it was (the verdict control then fails the experiment as
  ``interrupted``, naming it), and interrupts the experiment as Ctrl-C does
  (``KeyboardInterrupt``, which no ``except Exception`` swallows: the method
  stops, the rollbacks run, the controls finish, the journal is written). When
  it arrives while the rollbacks or the controls' end-of-experiment work
  already run, it interrupts nothing: they finish, and the verdict says the
  run was interrupted all the same;
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
from types import FrameType
from typing import Any

from chaoslib.types import Configuration, Secrets

__all__: list[str] = []  # helpers of the controls, not activities

logger = logging.getLogger("chaostoolkit")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# chaoslib's functions (chaoslib.run, chaoslib.control) that finish an
# experiment: a first signal there interrupts nothing.
FINISHING = frozenset(
    {"run_rollback", "apply_rollbacks", "cleanup_controls", "cleanup_global_controls"}
)

_previous: dict[int, Any] = {}
_state: dict[str, Any] = {"count": 0, "signal": None, "configuration": None, "secrets": None}
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
        _state.update(count=0, signal=None)
        for signum in SIGNALS:
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
        _state.update(count=0, signal=None, configuration=None, secrets=None)


def signals_seen() -> int:
    return int(_state["count"])


def interrupted_by() -> str | None:
    """The name of the first signal that interrupted this experiment
    (``SIGINT``, ``SIGTERM``), None when none did."""
    name = _state["signal"]
    return str(name) if name else None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _state["count"] += 1
    if _state["count"] == 1:
        name = signal.Signals(signum).name
        _state["signal"] = name
        _stop_monitors(signum)
        if _finishing(frame):
            logger.warning(
                f"Caught {name} while the rollbacks or the controls finish the experiment: "
                "they go on to their end; the experiment is marked interrupted"
            )
            return
        if signum == signal.SIGINT:
            previous = _previous.get(signum)
            if callable(previous):
                previous(signum, frame)  # Python's own: KeyboardInterrupt
            raise KeyboardInterrupt
        logger.warning(
            f"Caught {name} signal, interrupting experiment now (as Ctrl-C: the method "
            "stops; the rollbacks, the controls and the journal finish)"
        )
        raise KeyboardInterrupt
    logger.warning(
        f"signal {signum} again: stopping the load and uncordoning what chaosray "
        "cordoned now; the rollbacks and the journal finish (not interrupted again)"
    )
    for what, step in _emergency_steps():
        try:
            logger.warning(f"  {what}: {step()}")
        except Exception as exc:  # say it, and go on with the next step
            logger.error(f"  {what} failed: {exc}")


def _finishing(frame: FrameType | None) -> bool:
    """True when the main thread is in chaoslib's rollbacks
    (``chaoslib.run.run_rollback``), its after-experiment controls
    (``chaoslib.control.apply_controls(level="experiment", scope="after")``)
    or the controls' cleanup: interrupting those would leave the undo steps or
    the journal unfinished."""
    while frame is not None:
        code = frame.f_code
        if "chaoslib" in code.co_filename:
            if code.co_name in FINISHING:
                return True
            if code.co_name == "apply_controls":
                local = frame.f_locals
                if local.get("level") == "experiment" and local.get("scope") == "after":
                    return True
        frame = frame.f_back
    return False


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
