"""Time from launching the REPL to its prompt, to "ready:" and to its first answer, in a real terminal.

    .venv/bin/python -m bench.repl [--runs 3] [--index DIR] [--json]

Starts `qa repl` in a pseudo-terminal (pexpect, from the `dev` extra) the way a user does and
times it with `bench.startup.time_one_session`, the clock of the benchmark's `repl` section. The
index must exist (`qa index`). The engine is the REPL's own choice ($QA_BACKEND).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from .common import COLD_QUESTION
from .startup import time_one_session

_MARKS = (("prompt", "prompt"), ("ready", "ready: line"), ("answer", "first answer"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.repl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="sessions to time (default 3)")
    parser.add_argument("--index", type=Path, help="index folder (default: the REPL's default, embeddings/)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def figures_of(runs: list[dict[str, float]]) -> dict:
    """Every run and the median of each mark, in seconds, and the load average after."""
    figures: dict = {"question": COLD_QUESTION}
    for mark, _ in _MARKS:
        figures[f"{mark}_s"] = [round(run[mark], 2) for run in runs]
        figures[f"{mark}_median_s"] = round(statistics.median(run[mark] for run in runs), 2)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import pexpect
    except ImportError:
        print("bench.repl: needs pexpect: .venv/bin/pip install -e '.[dev]'", file=sys.stderr)
        return 1
    try:
        runs = [time_one_session(args.index) for _ in range(args.runs)]
    except (RuntimeError, pexpect.TIMEOUT) as error:  # the REPL exited early or hung
        reason = str(error).splitlines()[0] if isinstance(error, RuntimeError) else "timed out"
        print(f"bench.repl: the session did not answer: {reason}", file=sys.stderr)
        return 1
    figures = figures_of(runs)
    if args.json:
        print(json.dumps(figures))
        return 0
    for mark, what in _MARKS:
        print(f"launch to {what}: median {figures[f'{mark}_median_s']} s (runs {figures[f'{mark}_s']})")
    print(f"load average after: {figures['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
