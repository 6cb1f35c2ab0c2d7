"""The source of the shipped experiments: ``scripts/write_experiments.py``
writes ``experiments/<name>.json`` from these modules, and
``tests/test_experiment_sources.py`` fails when the JSON files and the source
disagree. Edit here, then run ``.venv/bin/python scripts/write_experiments.py``.

- ``shared.py``: what several experiments share, written once: the
  configuration declarations (the deployment, the load, the common timings,
  the safety settings), the controls, the probes and actions that recur;
- ``reads.py``: the configuration keys chaosray code reads from the
  ``configuration`` mapping itself (not through ``${key}``), by activity and
  control;
- one module per experiment (``worker_delete.py`` writes
  ``worker-delete.json``): its own configuration keys, title, description,
  tags, steady-state hypothesis, method and rollbacks.

Each experiment declares exactly the keys it uses: the ``${key}`` it
references, and the keys ``reads.py`` lists for the activities and controls
it calls. Not a package of chaosray (no ``__init__.py`` above it): it is not
installed with the experiments.
"""

# The experiments, in the suite's order (chaosray.suite.runner.ALL).
EXPERIMENTS = [
    "pre-validation",
    "worker-delete",
    "node-drain",
    "sequential-worker-delete",
    "redis-delete",
    "head-delete",
    "post-validation",
]
