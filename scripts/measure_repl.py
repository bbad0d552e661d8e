#!/usr/bin/env python3
"""Time from launching the REPL to its prompt and to its first answer, in a real terminal.

    .venv/bin/python scripts/measure_repl.py [--runs 3] [--index DIR] [--json]

Starts `qa repl` in a pseudo-terminal (pexpect, from the `dev` extra) the way a user does, types
"where did Kim meet Putin?" as soon as the prompt appears, and stops the clock when the
Vladivostok passage is printed. The prompt comes first because the model and the index load in
the background; the first answer waits for them. The index must exist (`qa index`).
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


def time_one_session(index: Path | None) -> tuple[float, float]:
    """(seconds to the prompt, seconds to the first answer) of one REPL session."""
    import pexpect

    env = dict(os.environ, NO_COLOR="1", TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    args = ["-m", "qa", "repl"] + (["--index", str(index)] if index else [])
    started = time.perf_counter()
    child = pexpect.spawn(sys.executable, args, cwd=str(REPO), env=env, encoding="utf-8", timeout=120,
                          dimensions=(40, 120))
    try:
        child.expect("qa>")
        prompt = time.perf_counter() - started
        child.send(QUESTION + "\r")
        child.expect("Vladivostok")
        answer = time.perf_counter() - started
        child.expect("qa>")
        child.send("\x04")
        child.expect(pexpect.EOF)
    except pexpect.EOF:
        printed = [line for line in (child.before or "").splitlines() if line.strip()]
        raise RuntimeError(printed[-1].strip() if printed else "the REPL exited without output") from None
    finally:
        child.close(force=True)
    return prompt, answer


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
    figures = {
        "question": QUESTION,
        "prompt_s": [round(p, 2) for p, _ in runs],
        "first_answer_s": [round(a, 2) for _, a in runs],
        "prompt_median_s": round(statistics.median(p for p, _ in runs), 2),
        "first_answer_median_s": round(statistics.median(a for _, a in runs), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"launch to prompt: median {figures['prompt_median_s']} s (runs {figures['prompt_s']})")
        print(f"launch to first answer: median {figures['first_answer_median_s']} s (runs {figures['first_answer_s']})")
        print(f"load average after: {figures['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
