"""How often ``chaosray compare`` flags a change, with and without one.

Not a timing benchmark: the figures are rates, for the decision rule of
``chaosray.report.compare`` (``runs_test`` then ``judge``) against a
baseline rule measured on the same draws: Welch's t-test alone on every
figure (no permutation test for a side whose runs all gave one value, no
overlap check), adjusted the same way (Benjamini-Hochberg).

Each trial compares two sides of ``--runs`` runs of ``--figures`` figures:
a fifth are "on/off" (an outage of about 23 s in half the runs, 0 s in the
others, as the lab's sequential delete does), the rest normal (80 +/- 5 s,
whole seconds, as recovery times). Printed per rule:

- **same code**: the share of trials with any figure flagged when nothing
  changed (should stay below alpha);
- **recovery +20 s**: the share of trials in which one normal figure,
  20 s slower on the current side, is flagged;
- **outage more often**: the same for one on/off figure whose outage
  happens in 95 % of the current runs instead of half.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
from scipy import stats

from chaosray.report.compare import judge, runs_test


def draw(rng: np.random.Generator, on_off: bool, runs: int, changed: bool) -> list[float]:
    if on_off:
        share = 0.95 if changed else 0.5
        values = np.where(rng.random(runs) < share, rng.normal(23.0, 2.0, runs), 0.0)
        return [float(v) for v in values.round(1)]
    return [float(v) for v in rng.normal(100.0 if changed else 80.0, 5.0, runs).round(0)]


def welch_only(base: list[float], current: list[float]) -> dict[str, Any]:
    """The baseline rule: Welch's test whenever there is any spread."""
    if max(base) == min(base) and max(current) == min(current):
        return {"test": None, "p_value": None, "separated": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(stats.ttest_ind(current, base, equal_var=False).pvalue)
    worse = np.mean(current) > np.mean(base)
    return {
        "test": "welch_t",
        "p_value": p_value if np.isfinite(p_value) else 1.0,
        "separated": "worse" if worse else "better",  # no overlap check
    }


def trial(
    rng: np.random.Generator, runs: int, figures: int, changed: int | None, rule: Any
) -> set[int]:
    """The figures flagged as regressions (index ``changed`` is changed)."""
    row: dict[str, Any] = {"figures": {}}
    for index in range(figures):
        on_off = index < figures // 5
        base = draw(rng, on_off, runs, False)
        current = draw(rng, on_off, runs, index == changed)
        row["figures"][str(index)] = {
            **rule(base, current), "p_adjusted": None, "significant": False, "worse": False,
            "baseline_values": base, "current_values": current,
        }  # fmt: skip
    judge([row], 0.05)
    flagged = {int(name) for name, f in row["figures"].items() if f["significant"]}
    return flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--figures", type=int, default=20)
    parser.add_argument("--runs", default="2,3,4", help="runs a side, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    on_off_figure, normal_figure = 0, args.figures - 1
    print(f"{args.trials} trials of {args.figures} figures each, alpha 0.05")
    print("runs | rule              | same code | recovery +20 s | outage more often")
    for runs in (int(r) for r in args.runs.split(",")):
        for name, rule in (("chaosray", runs_test), ("Welch alone", welch_only)):
            rng = np.random.default_rng(args.seed)  # both rules see the same draws
            same = slower = more_often = 0
            for _ in range(args.trials):
                same += bool(trial(rng, runs, args.figures, None, rule))
                slower += normal_figure in trial(rng, runs, args.figures, normal_figure, rule)
                more_often += on_off_figure in trial(rng, runs, args.figures, on_off_figure, rule)
            n = args.trials
            print(f"{runs:4d} | {name:17s} | {same / n:9.3f} | {slower / n:14.2f} | "
                  f"{more_often / n:17.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
