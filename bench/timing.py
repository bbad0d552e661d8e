"""Warm timing of several systems on the same questions: interleaved in a fresh order per
question, at each system's own torch thread count, idle or under a competing CPU load."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .common import COLD_QUESTION, log, summarize


@dataclass
class Runner:
    """One system's call for a question, and the torch thread count it runs at: torch's count is
    process-wide, so it is set before the clock starts, for every torch-based system alike."""

    run: Callable[[str], Any]
    torch_threads: int | None = None


def use_torch_threads(threads: int | None) -> bool:
    """Set torch's process-wide thread count; True when it changed (the next call re-forms the
    OpenMP team, so the caller spends one untimed call on it)."""
    if threads is None:
        return False
    import torch

    if torch.get_num_threads() == threads:
        return False
    torch.set_num_threads(threads)
    return True


def time_interleaved(runners: dict[str, Runner], questions: Sequence[str], seed: int = 0) -> dict[str, list[float]]:
    """Seconds per question per system, systems in a fresh shuffled order for each question: with
    a fixed (or merely rotated) order, the system that always ran right after txtai, which holds
    its own copy of the model, measured slower. A load spike from other jobs hits all alike."""
    timings: dict[str, list[float]] = {name: [] for name in runners}
    shuffler = random.Random(seed)
    for q in questions:
        for name in shuffler.sample(list(runners), len(runners)):
            runner = runners[name]
            if use_torch_threads(runner.torch_threads):
                runner.run("warm up")
            started = time.perf_counter()
            runner.run(q)
            timings[name].append(time.perf_counter() - started)
    return timings


def warm_up(runners: dict[str, Runner]) -> None:
    """Three untimed calls per system, in English and French."""
    for runner in runners.values():
        use_torch_threads(runner.torch_threads)
        for q in ("warm up", "où Kim a-t-il rencontré Poutine ?", COLD_QUESTION):
            runner.run(q)


@contextmanager
def competing_load(processes: int) -> Iterator[int]:
    """`processes` busy-looping Python children, so the measured calls compete for the CPU as they
    do when another job keeps the cores busy. They are killed on the way out, whatever happens."""
    children: list[subprocess.Popen] = []
    try:
        for _ in range(processes):
            children.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # running, not still starting
        yield len(children)
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def idle_vs_loaded(runners: dict[str, Runner], questions: Sequence[str]) -> dict[str, dict]:
    """The same interleaved timing idle and under `competing_load`, in two rounds (idle, loaded,
    idle, loaded over halves of the questions) so a drift of the machine's own load over the
    section lands on both conditions."""
    processes = os.cpu_count() or 1
    timings: dict[str, dict[str, list[float]]] = {name: {"idle": [], "loaded": []} for name in runners}
    for round_no, part in enumerate((questions[::2], questions[1::2])):
        for condition in ("idle", "loaded"):
            log(f"{condition}, round {round_no + 1}/2: {len(part)} questions x {len(runners)} systems")
            if condition == "loaded":
                with competing_load(processes):
                    measured = time_interleaved(runners, part, seed=round_no)
            else:
                measured = time_interleaved(runners, part, seed=round_no)
            for name, seconds in measured.items():
                timings[name][condition] += seconds
    return {name: _ratios(summarize(t["idle"]), summarize(t["loaded"])) for name, t in timings.items()}


def _ratios(idle: dict[str, float], loaded: dict[str, float]) -> dict[str, Any]:
    return {"idle": idle, "loaded": loaded, "ratio_median": round(loaded["median_ms"] / idle["median_ms"], 2),
            "ratio_p95": round(loaded["p95_ms"] / idle["p95_ms"], 2)}
