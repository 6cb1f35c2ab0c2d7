"""Reports of experiments and suite runs: pure logic (data in, data out).

- :func:`summarize_experiment`: one journal (plus, optionally, the availability
  monitor's samples) to a ``chaosray.report.experiment/v1`` document.
- :func:`summarize_suite`: experiment summaries to a ``chaosray.report.suite/v1``
  document with a comparison table and totals.
- Renderers of a suite document, each returning a string: :func:`render_json`,
  :func:`render_junit`, :func:`render_console` (rich), :func:`render_html`.
- :func:`mark_interrupted_runs`: completes the run entries of activities a
  signal cut off, so ``chaos report`` can render the journal.

The documents are described field by field in ``docs/report-schema.md``.
Nothing here reads or writes files: the caller passes the data in.
"""

from __future__ import annotations

from chaosray.journal import mark_interrupted_runs
from chaosray.report.experiment import EXPERIMENT_SCHEMA, summarize_experiment
from chaosray.report.html import render_html
from chaosray.report.render import render_console, render_json, render_junit
from chaosray.report.suite import SUITE_SCHEMA, summarize_suite

__all__ = [
    "EXPERIMENT_SCHEMA",
    "SUITE_SCHEMA",
    "mark_interrupted_runs",
    "render_console",
    "render_html",
    "render_json",
    "render_junit",
    "summarize_experiment",
    "summarize_suite",
]
