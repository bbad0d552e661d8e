#!/usr/bin/env python3
"""Time from launching the REPL to its prompt, to "ready:" and to its first answer, in a real terminal.

    .venv/bin/python scripts/measure_repl.py [--runs 3] [--index DIR] [--json]

Starts `qa repl` in a pseudo-terminal (pexpect, from the `dev` extra) the way a user does, types
"where did Kim meet Putin?" as soon as the prompt appears, notes when the REPL prints its
"ready:" line (model and index loaded) and stops the clock when the Vladivostok passage is
printed. The prompt comes first because the model and the index load in the background; the
first answer waits for them. The index must exist (`qa index`). The engine is the REPL's own
choice ($QA_BACKEND). scripts/bench.py loads this file by path for its `repl` section.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUESTION = "where did Kim meet Putin?"


def time_one_session(index: Path | None, env: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds from launch to the prompt, to the "ready:" line and to the first answer of one
    REPL session, started with `env` (default: this process's environment)."""
    import pexpect

    env = dict(os.environ if env is None else env, NO_COLOR="1", TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    args = ["-m", "qa", "repl"] + (["--index", str(index)] if index else [])
    started = time.perf_counter()
    child = pexpect.spawn(sys.executable, args, cwd=str(REPO), env=env, encoding="utf-8", timeout=120,
                          dimensions=(40, 120))
    marks: dict[str, float] = {}
    try:
        while "answer" not in marks:  # the ready line may come before or after the prompt
            which = child.expect(["qa>", "ready:", "Vladivostok"])
            mark = ("prompt", "ready", "answer")[which]
            if mark not in marks:
                marks[mark] = time.perf_counter() - started
                if mark == "prompt":  # typed at once, as a user does
                    child.send(QUESTION + "\r")
        child.expect("qa>")
        child.send("\x04")
        child.expect(pexpect.EOF)
    except pexpect.EOF:
        printed = [line for line in (child.before or "").splitlines() if line.strip()]
        raise RuntimeError(printed[-1].strip() if printed else "the REPL exited without output") from None
    finally:
        child.close(force=True)
    if "ready" not in marks:
        raise RuntimeError("the REPL answered without printing its ready: line")
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="sessions to time (default 3)")
    parser.add_argument("--index", type=Path, help="index folder (default: the REPL's default, embeddings/)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        import pexpect
    except ImportError:
        print("measure_repl: needs pexpect: .venv/bin/pip install -e '.[dev]'", file=sys.stderr)
        return 1
    try:
        runs = [time_one_session(args.index) for _ in range(args.runs)]
    except (RuntimeError, pexpect.TIMEOUT) as error:  # the REPL exited early or hung
        reason = str(error).splitlines()[0] if isinstance(error, RuntimeError) else "timed out"
        print(f"measure_repl: the session did not answer: {reason}", file=sys.stderr)
        return 1
    figures: dict = {"question": QUESTION}
    for mark in ("prompt", "ready", "answer"):
        figures[f"{mark}_s"] = [round(run[mark], 2) for run in runs]
        figures[f"{mark}_median_s"] = round(statistics.median(run[mark] for run in runs), 2)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(figures))
    else:
        for mark, what in (("prompt", "prompt"), ("ready", "ready: line"), ("answer", "first answer")):
            print(f"launch to {what}: median {figures[f'{mark}_median_s']} s (runs {figures[f'{mark}_s']})")
        print(f"load average after: {figures['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
