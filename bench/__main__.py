"""`python -m bench`: parse the flags, run the chosen sections in order in a temporary folder,
and write bench.json and BENCHMARKS.md. `--worker` turns the process into one measured child
(bench.workers)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from . import indexing, latency, quality, results, scaling, startup, stores
from .common import REPO, SECTIONS, elapsed, log, machine_info
from .state import Bench
from .workers import TASKS, worker_main

SECTION_RUNS: dict[str, Callable[[Bench], dict]] = {
    "indexing": indexing.section_indexing, "storage": indexing.section_storage, "latency": latency.section_latency,
    "load": latency.section_load, "threads": latency.section_threads, "coldstart": startup.section_coldstart,
    "repl": startup.section_repl, "quality": quality.section_quality, "scaling": scaling.section_scaling,
    "stores": stores.section_stores}


def _sections_help() -> str:
    """The package docstring's list of sections, for --help."""
    listing = PACKAGE_DOC.split("Sections (``--only``):")[1].split("Baselines:")[0].strip("\n")
    return "sections:\n" + "\n".join(f"  {line}" for line in listing.splitlines())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_sections_help(),
        description="Measure qa on each engine (indexing, storage, latency, load, threads, cold start, REPL, "
                    "quality, search scaling) against plain sentence-transformers, txtai and fastembed, measured in "
                    "the same run; write a markdown report and JSON.")
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: scaling at 10k only, fewer queries and runs, no PIAF-size indexing")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)}); others already in --out-json are kept")
    parser.add_argument("--out-md", default=str(REPO / "BENCHMARKS.md"), metavar="PATH",
                        help="markdown report (default: BENCHMARKS.md at the repository root)")
    parser.add_argument("--out-json", default=str(REPO / "bench.json"), metavar="PATH",
                        help="raw results (default: bench.json at the repository root)")
    parser.add_argument("--hnsw-budget", type=float, default=600, metavar="SECONDS",
                        help="skip an HNSW build whose time, extrapolated from the previous size, exceeds this "
                             "(default 600)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch and FAISS, in this process and every child (sets "
                             "OMP_NUM_THREADS, so the torch-based peers run at N); default: the libraries' own (one "
                             "per core). qa's engines take QA_THREADS (default: one per core for onnx); the threads section compares")
    parser.add_argument("--piaf-limit", type=int, default=0, metavar="N",
                        help="index only the first PIAF articles, about N paragraphs (default: all)")
    parser.add_argument("--worker", choices=sorted(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_sections(sections: Sequence[str], quick: bool, *, piaf_limit: int = 0,
                 hnsw_budget_s: float = 600) -> dict[str, dict]:
    """Run the sections in SECTIONS order (indexing builds what later sections reuse)."""
    records: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        bench = Bench(quick, Path(tmp), piaf_limit=piaf_limit, hnsw_budget_s=hnsw_budget_s)
        for name in (s for s in SECTIONS if s in sections):
            log(f"== {name}")
            started = time.perf_counter()
            result = SECTION_RUNS[name](bench)
            records[name] = results.section_record(result, time.perf_counter() - started, quick)
    return records


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, json.loads(args.params or "{}"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_HUB_OFFLINE"] = "1"  # every system reads the local folder; none may download
    if args.threads:  # before torch or faiss is imported; children inherit it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sections = args.only or list(SECTIONS)
    machine = machine_info()
    log(f"{machine['nproc']} CPUs, {machine['cpu_model']}, load {machine['load_average']}; "
        f"sections: {', '.join(sections)}{' (quick)' if args.quick else ''}")
    records = run_sections(sections, args.quick, piaf_limit=args.piaf_limit, hnsw_budget_s=args.hnsw_budget)
    out_json, out_md = Path(args.out_json), Path(args.out_md)
    data = {"sections": results.kept_sections(out_json) if args.only else {}}
    data["sections"].update(records)
    data["meta"] = {"date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": machine,
                    "quick": args.quick, "threads": args.threads,
                    "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
                    "total_s": round(elapsed(), 1)}
    results.write(data, out_json, out_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
