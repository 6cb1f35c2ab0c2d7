"""The ``chaosray`` command."""

from __future__ import annotations

import argparse
import sys

from chaosray import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosray",
        description=(
            "Chaos experiments for Ray Serve on Kubernetes (KubeRay). Run single "
            "experiments with `chaos run experiments/<name>.json`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chaosray {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
