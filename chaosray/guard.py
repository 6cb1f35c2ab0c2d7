"""Settings check: nothing disruptive runs on a bad configuration.

Declared first among an experiment's controls, its
``before_experiment_control`` runs before any other control starts load and
before the steady state is probed. It reads what the experiment would run
with and interrupts the experiment, changing nothing, when:

- a var file named on the ``chaos run`` command line does not parse (Chaos
  Toolkit logs one line and goes on with the defaults), or sets a
  configuration key that no chaosray experiment knows (a misspelling: Chaos
  Toolkit drops keys the experiment does not declare); the nearest known key
  is named;
- an argument of a chaosray activity or control, after substitution, is not
  of the type its function declares, or is out of range (a rate of 0, a
  negative duration).

Numbers that arrive as strings (``chaos run --var load_rate=50`` gives the
string ``"50"``) are converted where a number is expected, in the
configuration itself, so every activity and control sees the number.

The same checks back ``chaosray suite run`` (:func:`check_var_file`), which
refuses before anything runs.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import logging
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from chaoslib import substitute
from chaoslib.exceptions import InterruptExecution
from chaoslib.types import Configuration, Experiment, Secrets

from chaosray import interrupts

__all__ = ["before_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")

# Keys every chaosray experiment may use, beyond the experiment's own: the
# configuration keys of the shipped experiments (read once, lazily).
_known_keys: set[str] | None = None

# Numeric arguments that must be strictly positive; every other number must
# not be negative.
POSITIVE = {"rate", "duration", "timeout", "monitor_rate", "load_rate"}
FRACTIONS = {"min_success_rate", "threshold_failure_rate"}
_CONTROL_PARAMS = {"context", "state", "configuration", "secrets", "experiment", "settings"}


class BadSettings(ValueError):
    """A setting that would make the experiment run wrong; its message is
    the one line the user sees."""


def known_configuration_keys() -> set[str]:
    """Every configuration key a shipped chaosray experiment declares."""
    global _known_keys
    if _known_keys is None:
        from chaosray.suite.runner import default_experiments_dir

        keys: set[str] = set()
        for path in sorted(default_experiments_dir().glob("*.json")):
            keys.update(json.loads(path.read_text()).get("configuration", {}))
        _known_keys = keys
    return set(_known_keys)


def _nearest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_var_file(path: Path) -> dict[str, Any] | None:
    """The var file's mapping, as Chaos Toolkit reads it (JSON or YAML by
    extension); None for a ``.env`` file. Raises BadSettings when it cannot be
    read or does not parse."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadSettings(f"var file {path} cannot be read: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        return None
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise BadSettings(f"var file {path} does not parse: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadSettings(f"var file {path} must hold a mapping with `configuration`/`secrets`")
    unknown_top = set(data) - {"configuration", "secrets"}
    if unknown_top:
        raise BadSettings(
            f"var file {path}: unknown top-level key(s) {', '.join(sorted(unknown_top))} "
            "(only `configuration` and `secrets`)"
        )
    return data


def check_var_file(path: Path, known: set[str]) -> dict[str, Any]:
    """Parse a var file and refuse configuration keys outside ``known``."""
    data = read_var_file(path) or {}
    configuration = data.get("configuration") or {}
    if not isinstance(configuration, dict):
        raise BadSettings(f"var file {path}: `configuration` must be a mapping")
    for key in configuration:
        if key not in known:
            raise BadSettings(
                f"var file {path}: unknown configuration key {key!r}{_nearest(key, known)}"
            )
    return data


def _cli_var_files(argv: list[str]) -> Iterator[Path]:
    """The ``--var-file`` paths of a ``chaos run`` command line."""
    for index, arg in enumerate(argv):
        if arg == "--var-file" and index + 1 < len(argv):
            yield Path(argv[index + 1])
        elif arg.startswith("--var-file="):
            yield Path(arg.split("=", 1)[1])


def _cli_var_keys(argv: list[str]) -> Iterator[str]:
    """The keys of a ``chaos run`` command line's ``--var key[:type]=value``."""
    for index, arg in enumerate(argv):
        value = None
        if arg == "--var" and index + 1 < len(argv):
            value = argv[index + 1]
        elif arg.startswith("--var="):
            value = arg.split("=", 1)[1]
        if value and "=" in value:
            yield value.split("=", 1)[0].split(":", 1)[0]


# --- argument types -------------------------------------------------------------------------


def _number(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float) when it is one or a numeric
    string; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return kind(value) if kind is float else value
    if isinstance(value, str):
        text = value.strip()
        return int(text) if kind is int else float(text)
    raise ValueError


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(fits, value converted) of an argument against its type hint."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True, value
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return True, None
        # Exact types first, so "7" stays a string where str is allowed.
        for option in options:
            if option is not type(None) and _is_instance(value, option):
                return True, value
        for option in options:
            if option is type(None):
                continue
            fits, converted = _conform(value, option)
            if fits:
                return True, converted
        return False, value
    if hint in (int, float):
        try:
            return True, _number(value, hint)
        except (TypeError, ValueError):
            return False, value
    if hint is bool:
        if isinstance(value, bool):
            return True, value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True, True
        if text in ("false", "no", "off", "0"):
            return True, False
        return False, value
    if hint is str:
        return isinstance(value, str | int | float) and not isinstance(value, bool), value
    return _is_instance(value, hint), value


def _describe(hint: Any) -> str:
    """A type hint in words: ``float``, ``one of failed, inconclusive``."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        return " or ".join(_describe(o) for o in options)
    return str(getattr(hint, "__name__", hint))


def _is_instance(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Literal:
        return value in typing.get_args(hint)
    base = typing.get_origin(hint) or hint
    if not isinstance(base, type):
        return True  # a hint we do not check (a TypedDict, say)
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    try:
        return isinstance(value, base)
    except TypeError:
        return True


def check_range(name: str, value: Any) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if name in POSITIVE and value <= 0:
        return f"{name} must be greater than 0, got {value!r}"
    if name in FRACTIONS and not 0 <= value <= 1:
        return f"{name} is a fraction between 0 and 1, got {value!r}"
    if value < 0:
        return f"{name} must not be negative, got {value!r}"
    return None


def _reference(raw: Any) -> str | None:
    """The configuration key of an argument written as exactly ``${key}``."""
    if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") and raw.count("${") == 1:
        return raw[2:-1]
    return None


def _signature_of(module_name: str, func_name: str | None) -> Callable[..., Any] | None:
    """The function whose parameters an activity's or control's arguments fill."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    if func_name:
        found = getattr(module, func_name, None)
        return found if callable(found) else None
    # A control: its declared argument signature, else its hooks' parameters.
    described: Callable[..., Any] | None = getattr(module, "control_arguments", None)
    if callable(described):
        return described
    hook: Callable[..., Any] | None = getattr(module, "before_experiment_control", None)
    return hook or getattr(module, "after_experiment_control", None)


def _check_provider(
    where: str,
    provider: dict[str, Any],
    configuration: dict[str, Any],
    secrets: Secrets,
    is_control: bool,
) -> list[str]:
    module_name = str(provider.get("module", ""))
    if provider.get("type") != "python" or not module_name.startswith("chaosray."):
        return []
    func = _signature_of(module_name, None if is_control else provider.get("func"))
    if func is None:
        return [f"{where}: {module_name}.{provider.get('func')} does not exist"]
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # a hint that cannot be resolved: check names only
        hints = {}
    # A control's described arguments may leave out the ones its hooks take
    # apart (the K6 control's service_name, say): only names it lists are checked.
    accepts_any = is_control or any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    problems: list[str] = []
    raw_arguments = dict(provider.get("arguments") or {})
    for name, raw in raw_arguments.items():
        if name not in signature.parameters or name in _CONTROL_PARAMS:
            if not accepts_any or name in _CONTROL_PARAMS:
                problems.append(
                    f"{where}: unknown argument {name!r}{_nearest(name, signature.parameters)}"
                )
            continue
        value = substitute(raw, configuration, secrets)
        fits, converted = _conform(value, hints.get(name, signature.parameters[name].annotation))
        if not fits:
            key = _reference(raw)
            source = f" (configuration {key!r})" if key else ""
            expected = _describe(hints.get(name))
            problems.append(f"{where}: {name}{source} must be {expected}, got {value!r}")
            continue
        problem = check_range(name, converted)
        if problem:
            key = _reference(raw)
            problems.append(f"{where}: {problem}" + (f" (configuration {key!r})" if key else ""))
            continue
        if isinstance(value, str) and not isinstance(converted, str):
            _store(raw, converted, configuration, provider.setdefault("arguments", {}), name)
    return problems


def _store(
    raw: Any, converted: Any, configuration: dict[str, Any], holder: dict[str, Any], name: str
) -> None:
    """Put a converted value where it came from: the configuration key of a
    ``${key}`` reference (so every reader gets it), else the literal."""
    key = _reference(raw)
    if key is not None and key in configuration:
        configuration[key] = converted
    else:
        holder[name] = converted


def _check_pauses(where: str, activity: dict[str, Any], configuration: dict[str, Any]) -> list[str]:
    problems = []
    pauses = activity.get("pauses") or {}
    for moment, raw in pauses.items():
        value = substitute(raw, configuration, None)
        fits, converted = _conform(value, float)
        if not fits or converted < 0:
            problems.append(f"{where}: pause {moment} must be a number of seconds, got {value!r}")
        elif isinstance(value, str):
            _store(raw, converted, configuration, pauses, moment)
    return problems


def _activities(experiment: Experiment) -> Iterator[tuple[str, dict[str, Any]]]:
    for probe in (experiment.get("steady-state-hypothesis") or {}).get("probes", []) or []:
        yield f"steady-state probe {probe.get('name')!r}", probe
    for activity in experiment.get("method", []) or []:
        yield f"{activity.get('type', 'activity')} {activity.get('name')!r}", activity
    for activity in experiment.get("rollbacks", []) or []:
        yield f"rollback {activity.get('name')!r}", activity


def check_experiment(
    experiment: Experiment,
    configuration: Configuration,
    secrets: Secrets,
    argv: list[str] | None = None,
) -> list[str]:
    """Every problem with what the experiment would run with, one line each.
    Converts numeric strings in ``configuration`` (and in literal arguments)
    where a number is expected."""
    problems: list[str] = []
    config: dict[str, Any] = configuration if configuration is not None else {}
    known = known_configuration_keys() | set(experiment.get("configuration") or {})
    argv = sys.argv if argv is None else argv
    for path in _cli_var_files(argv):
        try:
            check_var_file(path, known)
        except BadSettings as exc:
            problems.append(str(exc))
    for key in _cli_var_keys(argv):
        if key not in known:
            problems.append(f"--var: unknown configuration key {key!r}{_nearest(key, known)}")
    for control in experiment.get("controls", []) or []:
        provider = control.get("provider") or {}
        problems += _check_provider(
            f"control {control.get('name')!r}", provider, config, secrets, is_control=True
        )
    for where, activity in _activities(experiment):
        provider = activity.get("provider") or {}
        problems += _check_provider(where, provider, config, secrets, is_control=False)
        problems += _check_pauses(where, activity, config)
    return problems


def before_experiment_control(
    context: Experiment,
    configuration: Configuration = None,
    secrets: Secrets = None,
    **kwargs: Any,
) -> None:
    """Interrupt the experiment, before anything runs, when its settings are
    bad (see the module's docstring); convert numeric strings in place."""
    # From here on, a second Ctrl-C stops the load and uncordons instead of
    # aborting the rollbacks (chaosray.interrupts).
    interrupts.hook(configuration, secrets)
    problems = check_experiment(context, configuration, secrets)
    if problems:
        for problem in problems[1:]:
            logger.error(f"chaosray settings: {problem}")
        more = f" (and {len(problems) - 1} more, above)" if len(problems) > 1 else ""
        raise InterruptExecution(f"chaosray settings: {problems[0]}{more}; nothing was changed")


def cleanup_control() -> None:
    """Put back the signal handlers once the experiment is over."""
    interrupts.unhook()
