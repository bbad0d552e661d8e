"""The start-up sections: process start to first answer of `qa ask` against the bare floors of
the peer libraries (coldstart), and `qa repl` launch to prompt, to "ready:" and to the first
answer in a pseudo-terminal (repl). `time_one_session` is also `python -m bench.repl`'s clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import COLD_QUESTION, REPO, log
from .state import Bench
from .systems import FASTEMBED_NAME

# The least any dense retriever on this stack pays before its first answer: start Python, import
# sentence-transformers (torch), load the model, embed one question.
COLD_FLOOR = """
from sentence_transformers import SentenceTransformer
SentenceTransformer({model!r}, device="cpu").encode([{question!r}], prompt="query: ")
"""

# The same floor for fastembed on the folder's ONNX export (the registration of make_fastembed).
COLD_FASTEMBED = """
from fastembed import TextEmbedding
from fastembed.common.model_description import ModelSource, PoolingType
TextEmbedding.add_custom_model(model={name!r}, pooling=PoolingType.MEAN, normalization=True,
    sources=ModelSource(hf={name!r}), dim=384, model_file="onnx/model.onnx", additional_files=["onnx/model.onnx_data"])
list(TextEmbedding(model_name={name!r}, specific_model_path={model!r}).embed(["query: " + {question!r}]))
"""

_QA_SETTINGS = ("QA_INDEX", "QA_CORPUS", "QA_BACKEND", "QA_THREADS")


def clean_env() -> dict[str, str]:
    """This environment without the qa settings a developer may have exported, so a child runs
    qa's defaults (the default engine among them) and only what a section sets differs."""
    return {k: v for k, v in os.environ.items() if k not in _QA_SETTINGS}


def section_coldstart(bench: Bench) -> dict:
    """Process start to first answer of the CLI on each engine (imports, model load, index load,
    one question), alternated with the bare floors of the peer libraries so all see the same load."""
    commands = _cold_commands(bench.corpus_index())
    runs: dict[str, list[float]] = {name: [] for name in commands}
    failures: dict[str, str] = {}
    for i in range(bench.cold_runs):
        log(f"cold start {i + 1}/{bench.cold_runs}")
        for name, (command, env) in commands.items():
            started = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
            runs[name].append(time.perf_counter() - started)
            wanted = "Vladivostok" if name.startswith("qa-") else ""
            if proc.returncode != 0 or wanted not in proc.stdout:
                failures[name] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-200:]}"
    return {"command": f"qa ask {COLD_QUESTION!r} --index <tmp index of corpus/>", "runs": bench.cold_runs,
            "systems": {name: {"runs_s": [round(t, 3) for t in times], "median_s": round(float(np.median(times)), 3),
                               "ok": name not in failures, **({"error": failures[name]} if name in failures else {})}
                        for name, times in runs.items()}}


def _cold_commands(index: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each cold-started system's command line and environment."""
    from qa.model import default_model_dir

    qa_bin = Path(sys.executable).parent / "qa"
    ask = ([str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa"]) + ["ask", COLD_QUESTION, "--index", str(index)]
    base_env = clean_env()
    model = str(default_model_dir())
    return {"qa-onnx": (ask, base_env), "qa-torch": (ask, {**base_env, "QA_BACKEND": "torch"}),
            "st-floor": ([sys.executable, "-c", COLD_FLOOR.format(model=model, question=COLD_QUESTION)], base_env),
            "fastembed-floor": ([sys.executable, "-c", COLD_FASTEMBED.format(
                model=model, name=FASTEMBED_NAME, question=COLD_QUESTION)], base_env)}


def time_one_session(index: Path | None, env: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds from launch to the prompt, to the "ready:" line and to the first answer of one
    REPL session, started with `env` (default: this process's environment).

    The session runs in a pseudo-terminal (pexpect, from the `dev` extra) the way a user does:
    COLD_QUESTION is typed as soon as the prompt appears, and the clock stops when the
    Vladivostok passage is printed. The prompt comes first because the model and the index load
    in the background; the first answer waits for them."""
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
                    child.send(COLD_QUESTION + "\r")
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


def section_repl(bench: Bench) -> dict:
    """`qa repl` launch to prompt, to "ready:" and to the first answer, in a pseudo-terminal, on
    each engine alternated (see time_one_session)."""
    index = bench.corpus_index()
    try:
        import pexpect  # noqa: F401 - time_one_session imports it lazily; fail here, before any session
    except ImportError as exc:
        return {"error": f"needs pexpect (the dev extra): {exc}"}
    envs = {"onnx": clean_env(), "torch": {**clean_env(), "QA_BACKEND": "torch"}}
    sessions: dict[str, list[dict[str, float]]] = {name: [] for name in envs}
    try:
        for i in range(bench.repl_runs):
            for name, session_env in envs.items():
                log(f"repl {name} {i + 1}/{bench.repl_runs}")
                sessions[name].append(time_one_session(index, session_env))
    except Exception as exc:  # the REPL hung or exited: say so in the report
        return {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
    return {"question": COLD_QUESTION, "runs": bench.repl_runs,
            "systems": {name: session_figures(runs) for name, runs in sessions.items()}}


def session_figures(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Per mark (prompt, ready, answer): every run and the median, in seconds."""
    out: dict[str, Any] = {}
    for mark in runs[0]:
        out[f"{mark}_runs_s"] = [round(r[mark], 3) for r in runs]
        out[f"{mark}_median_s"] = round(float(np.median(out[f"{mark}_runs_s"])), 3)
    return out
