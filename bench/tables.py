"""BENCHMARKS.md's tables, one renderer per section (from that section's JSON), and the
formatting and system names they share with the page around them (bench.report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .indexing import INDEX_SYSTEMS

SYSTEM_LABELS = {"qa-onnx": "qa, onnx (default mode)", "qa-onnx-dense": "qa, onnx, --mode dense",
                 "qa-torch": "qa, torch (default mode)", "qa-lexical": "qa --mode lexical (BM25)", "qa-onnx-no-rerank": "qa, onnx, no MaxSim rerank",
                 "embed-onnx": "query embedding alone, onnx", "embed-torch": "query embedding alone, torch",
                 "qa-default": "qa (default)", "qa-dense": "qa --mode dense",
                 "plain": "plain sentence-transformers", "txtai": "txtai", "fastembed": "fastembed",
                 "st-floor": "bare sentence-transformers floor", "fastembed-floor": "bare fastembed floor"}
COLD_LABELS = {"qa-onnx": "`qa ask`, onnx (default)", "qa-torch": "`qa ask`, torch",
               "st-floor": SYSTEM_LABELS["st-floor"], "fastembed-floor": SYSTEM_LABELS["fastembed-floor"]}


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.{digits}f}×"


def _note(section: dict) -> str:
    load = section.get("load_average_after")
    return (f" _(measured {section['measured_at']}{', --quick' if section.get('quick') else ''}"
            f"{f', load average after: {load[0]}' if load else ''})_")


def _md_indexing(results: dict, section: dict) -> list[str]:
    out = ["## Indexing" + _note(section), "",
           "Each build runs in a child process; peak RSS is its `ru_maxrss` (model and engine included). Index time "
           "excludes model loading (listed apart). qa embeds every passage once (one forward pass gives its vector "
           "and its stored tokens) and compresses the tokens; the peers embed raw blank-line paragraphs only. "
           "Padding: share of the engine's token slots that were padding (qa's batches are sorted by length). "
           "On PIAF, qa onnx and plain sentence-transformers are built twice, interleaved with the others, and "
           "the faster build of each is shown (every build's time: `runs_s` in bench.json).",
           "", "| corpus | system | threads | passages | stored tokens | index time (s) | passages/s | padding | "
           "texts embedded/s | kchars/s | model load (s) | RSS after load (MiB) | peak RSS (MiB) | "
           "unchanged re-index (s) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for corpus, row in results.items():
        label = {"corpus": "corpus/", "piaf": "PIAF paragraphs as .txt"}.get(corpus, corpus)
        label += f" ({row['files']} files, {row['chars'] / 1000:,.0f} kchars)"
        for system in INDEX_SYSTEMS:
            r = row.get(system, {})
            if "error" in r or not r:
                out.append(f"| {label} | {SYSTEM_LABELS[system]} | failed: {r.get('error', 'not run')[:120]} |"
                           + " |" * 11)
                continue
            out.append(f"| {label} | {SYSTEM_LABELS[system]} | {fmt(r.get('threads'))} | {fmt(r['passages'])} | "
                       f"{fmt(r.get('tokens'))} | {fmt(r['index_s'], 2)} | {fmt(r['passages_per_s'])} | "
                       f"{_percent(r.get('padding'))} | {fmt(r['texts_per_s'])} | {fmt(r['kchars_per_s'], 2)} | "
                       f"{fmt(r['model_load_s'], 1)} | {fmt(r['rss_after_model_mb'], 0)} | {fmt(r['peak_rss_mb'], 0)} | "
                       f"{fmt(r.get('unchanged_rebuild_s'), 2)} |")
    return out + [""]


def _md_storage(results: dict, section: dict) -> list[str]:
    out = ["## Index size and load time" + _note(section), "",
           "| index | passages | stored tokens | token codec | size on disk | bytes/passage | token bytes/passage | "
           "`PassageIndex.open` median (ms) | first open in the process (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        out.append(f"| {name} | {fmt(r['passages'])} | {fmt(r.get('tokens'))} | {r.get('token_codec', '-')} | "
                   f"{r['bytes'] / 1e6:.2f} MB | {fmt(r['bytes_per_passage'])} | {fmt(r.get('token_bytes_per_passage'))} | "
                   f"{fmt(r['open']['median_ms'], 1)} | {fmt(r['first_open_ms'], 1)} |")
    return out + ["", "The first open of the first index also pays the faiss import.", ""]


def _md_errors(results: dict) -> list[str]:
    return [f"\n{SYSTEM_LABELS.get(name, name)} could not run: {error}" for name, error in results.get("errors", {}).items()]


def _md_latency(results: dict, section: dict) -> list[str]:
    out = ["## Query latency (warm)" + _note(section), "",
           f"{results['questions']} seed questions (EN and FR, answerable or not), one at a time, k={results['k']}, "
           f"after 3 warm-up calls; systems interleaved question by question in a fresh shuffled order. Index: "
           f"corpus/ ({results['passages']} passages, {fmt(results.get('tokens'))} stored tokens). qa, torch is a `Retriever` "
           "over the same index with `load_embedder(backend=\"torch\")`.", "",
           "| system | threads | median (ms) | p95 (ms) | mean (ms) | median / plain sentence-transformers |",
           "|---|---|---|---|---|---|"]
    plain = results["systems"].get("plain", {}).get("median_ms")
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(results['threads'].get(name))} | "
                   f"{fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} | {fmt(r['mean_ms'], 2)} | "
                   f"{ratio(r['median_ms'], plain)} |")
    out += _md_errors(results)
    alone = results.get("alone", {}).get("systems")
    if alone:
        out += ["", "The same questions with qa alone in a child process (no torch peer loaded beside it; torch's "
                    "OpenMP threads keep spinning after each of their calls and slow the next system in the "
                    "interleaved table): qa, onnx (default mode) median "
                    f"**{fmt(alone['qa-onnx']['median_ms'], 2)} ms** (p95 {fmt(alone['qa-onnx']['p95_ms'], 2)}), "
                    f"query embedding alone {fmt(alone['embed-onnx']['median_ms'], 2)} ms "
                    f"({results['alone'].get('threads')} threads)."]
    piaf = results.get("piaf")
    if piaf:
        out += ["", f"On the PIAF-size index ({piaf['passages']:,} passages, {fmt(piaf.get('tokens'))} stored tokens), "
                    f"{piaf['questions']} PIAF questions, interleaved; *no rerank* is the same retriever with "
                    "`RankingParams(rerank_depth=0)`, so the difference of the medians is what MaxSim costs:", "",
                "| system | median (ms) | p95 (ms) |", "|---|---|---|"]
        for name, r in piaf["systems"].items():
            out.append(f"| {SYSTEM_LABELS.get(name, name)} | {fmt(r['median_ms'], 2)} | {fmt(r['p95_ms'], 2)} |")
    return out + [""]


def _idle_loaded_table(systems: dict[str, dict], label: Callable[[str], str]) -> list[str]:
    out = ["| system | idle median (ms) | idle p95 (ms) | loaded median (ms) | loaded p95 (ms) | loaded / idle, median "
           "| loaded / idle, p95 |", "|---|---|---|---|---|---|---|"]
    for name, r in systems.items():
        out.append(f"| {label(name)} | {fmt(r['idle']['median_ms'], 2)} | {fmt(r['idle']['p95_ms'], 2)} | "
                   f"{fmt(r['loaded']['median_ms'], 2)} | {fmt(r['loaded']['p95_ms'], 2)} | {r['ratio_median']:.2f}× | "
                   f"{r['ratio_p95']:.2f}× |")
    return out


def _md_load(results: dict, section: dict) -> list[str]:
    threads = ", ".join(f"{SYSTEM_LABELS.get(n, n)} {t}" for n, t in results["threads"].items())
    return ["## Query latency under a competing CPU load" + _note(section), "",
            f"{results['questions']} seed questions, warm, interleaved as above, idle and while "
            f"{results['competing_processes']} busy-looping processes (`python -c \"while True: pass\"`, one per core) "
            "run; idle and loaded alternate over two halves of the questions. Threads: " + threads + ".", "",
            *_idle_loaded_table(results["systems"], lambda n: SYSTEM_LABELS.get(n, n)), *_md_errors(results), ""]


def _md_threads(results: dict, section: dict) -> list[str]:
    def label(name: str) -> str:
        backend, n = name.split("-")
        return f"{backend}, {n} thread{'s' if n != '1' else ''}"

    return ["## Engine threads: query embedding alone" + _note(section), "",
            f"{results['questions']} seed questions, each engine and thread count interleaved, idle and under the same "
            f"competing load ({results['competing_processes']} busy processes). qa's default: "
            f"{results['default_threads']} thread(s) (onnx; `qa.engines.default_threads`).", "",
            *_idle_loaded_table(results["systems"], label), ""]


def _md_coldstart(results: dict, section: dict) -> list[str]:
    systems = results["systems"]
    out = ["## Cold start" + _note(section), "",
           f"Process start to exit (first answer printed) of `{results['command']}` on each engine (`QA_BACKEND=torch` "
           f"for torch), alternated with the floors, {results['runs']} runs each. The floors are `python -c` runs that "
           "import the library, load the same model folder and embed the question, nothing else.", "",
           "| command | median (s) | runs (s) | answered / ran | / qa onnx |", "|---|---|---|---|---|"]
    onnx = systems.get("qa-onnx", {}).get("median_s")
    for name, r in systems.items():
        out.append(f"| {COLD_LABELS.get(name, name)} | {r['median_s']:.2f} | {', '.join(f'{t:.2f}' for t in r['runs_s'])} | "
                   f"{'yes' if r['ok'] else 'NO: ' + r.get('error', '')[:120]} | {ratio(r['median_s'], onnx)} |")
    return out + [""]


def _md_repl(results: dict, section: dict) -> list[str]:
    if "error" in results:
        return ["## REPL start" + _note(section), "", f"Not measured: {results['error']}", ""]
    out = ["## REPL start" + _note(section), "",
           f"`qa repl --index <tmp index of corpus/>` in a pseudo-terminal (pexpect, `bench/startup.py`), "
           f"{results['runs']} session(s) per engine, alternated; {results['question']!r} is typed as soon as the prompt "
           "shows. *Ready* is the REPL's `ready:` line (model and index loaded in the background).", "",
           "| engine | launch → prompt (s) | launch → ready (s) | launch → first answer (s) | ready runs (s) |",
           "|---|---|---|---|---|"]
    for name, r in results["systems"].items():
        out.append(f"| {name} | {r['prompt_median_s']:.2f} | {r['ready_median_s']:.2f} | {r['answer_median_s']:.2f} | "
                   f"{', '.join(f'{t:.2f}' for t in r['ready_runs_s'])} |")
    return out + [""]


def _md_quality(results: dict, section: dict) -> list[str]:
    out = ["## Retrieval quality on the seed questions" + _note(section), "",
           f"{results['questions']} answerable questions of `tests/data/seed_questions.jsonl` "
           f"({', '.join(f'{v} {k.upper()}' for k, v in results['languages'].items())}); {results['rule']}, "
           f"for every system alike. qa ranks its {results['qa_passages']} passages; the peers rank "
           f"{results['raw_paragraphs']} raw paragraphs.", "",
           "| system | hit@1 | hit@3 | MRR@10 | hit@1 EN | hit@1 FR | hit@1 − qa |", "|---|---|---|---|---|---|---|"]
    qa_h1 = results["systems"].get("qa-default", {}).get("hit@1", 0)
    for name, r in results["systems"].items():
        out.append(f"| {SYSTEM_LABELS.get(name, name)} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['mrr@10']:.3f} | "
                   f"{r['by_language']['en']['hit@1']:.3f} | {r['by_language']['fr']['hit@1']:.3f} | "
                   f"{100 * (r['hit@1'] - qa_h1):+.1f} pts |")
    if results.get("cosine_with_qa"):
        out.append("\nThe peers embed as qa does (same folder, `query: ` / `passage: ` prefixes, mean pooling, "
                   "normalised): lowest cosine with qa's onnx vectors over one query and one passage: "
                   + ", ".join(f"{SYSTEM_LABELS[n]} {c}" for n, c in results["cosine_with_qa"].items()) + ".")
    return out + _md_errors(results) + [""]


def _md_scaling(results: dict, section: dict) -> list[str]:
    out = ["## Search scaling: exact vs HNSW" + _note(section), "",
           f"Synthetic unit vectors (dim {results['dim']}); {results['queries']} queries, each a noisy copy of a stored "
           f"vector (cosine ≈ 0.8); one query per call, k={results['k']} (the candidates qa asks for). HNSW is "
           "`qa.index.make_faiss_index` with the parameters qa uses above `APPROXIMATE_FROM`. Recall@10: share of the "
           "exact top 10 that HNSW returns; recall@1: the exact best found first.", "",
           "| vectors | exact median (ms) | exact p95 (ms) | exact bytes/vector | HNSW median (ms) | HNSW p95 (ms) | "
           "HNSW recall@10 | HNSW recall@1 | HNSW bytes/vector | HNSW build (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    rows = list(results["synthetic"]) + ([results["real"]] if results.get("real") else [])
    out += [_scaling_row(r, results["hnsw_budget_s"]) for r in rows]
    return out + _scaling_claims(results, rows) + _scaling_crossover(results) + [""]


def _scaling_row(r: dict, hnsw_budget_s: float) -> str:
    e, h = r["exact"], r.get("hnsw")
    label = fmt(r["n"]) + (" (real: PIAF passages)" if r.get("what") else "")
    if h:
        hnsw = (f"{fmt(h['median_ms'], 3)} | {fmt(h['p95_ms'], 3)} | {h['recall@10']:.3f} | {h['recall@1']:.3f} | "
                f"{fmt(h['bytes_per_vector'], 0)} | {fmt(h['build_s'], 1)}")
    else:
        hnsw = (f"not built (estimated {fmt(r.get('hnsw_build_estimate_s'), 0)} s > budget "
                f"{fmt(hnsw_budget_s, 0)} s) | | | | |")
    return f"| {label} | {fmt(e['median_ms'], 3)} | {fmt(e['p95_ms'], 3)} | {fmt(e['bytes_per_vector'], 0)} | {hnsw} |"


def _scaling_claims(results: dict, rows: list[dict]) -> list[str]:
    """The claims of the comment on APPROXIMATE_FROM in qa/index/manifest.py, against this run's figures."""
    from qa.index import HNSW_EF_SEARCH, HNSW_M

    fit = results["fit"]
    built = [r for r in rows if r.get("hnsw")]
    hnsw_ms = ", ".join(f"{fmt(r['hnsw']['median_ms'], 2)} ms at {fmt(r['n'])}" for r in built) or "not built"
    recalls = ", ".join(f"{r['hnsw']['recall@10']:.3f} at {fmt(r['n'])}{' (real)' if r.get('what') else ''}"
                        for r in built) or "not built"
    return ["", "### The claims behind `APPROXIMATE_FROM` (comment in `qa/index/manifest.py`) against this run", "",
            "| claim | measured here |", "|---|---|",
            f"| exact search costs grow linearly with the vectors | {fit['ms_per_10k']:.2f} ms per 10k vectors, "
            f"intercept {fit['intercept_ms']:.2f} ms |",
            f"| at `APPROXIMATE_FROM` passages the exact search costs about as much as embedding the question | "
            f"{fmt(fit.get('exact_ms_at_approximate_from'))} ms at "
            f"{fit['approximate_from']:,}, embedding ({results.get('embed_backend', 'onnx')}) {fit['embed_ms']:.1f} ms |",
            f"| HNSW (M={HNSW_M}, efSearch={HNSW_EF_SEARCH}) answers in about a millisecond | {hnsw_ms} |",
            f"| HNSW's recall@10 is high on real passage vectors, poor on random ones | {recalls} |"]


def _scaling_crossover(results: dict) -> list[str]:
    """Where exact search becomes slower than embedding the question, for one index and for the pair."""
    fit = results["fit"]
    out = ["", "### `APPROXIMATE_FROM`", "",
           f"Exact search costs **{fit['ms_per_10k']:.2f} ms per 10k vectors** per query here (least-squares line, "
           f"intercept {fit['intercept_ms']:.2f} ms); embedding one question takes **{fit['embed_ms']:.1f} ms** "
           f"(median, {results.get('embed_backend', 'onnx')} engine, same run), so one exact search becomes slower "
           f"than embedding the question at about **{fmt(fit['crossover_vectors'])} vectors**. At `APPROXIMATE_FROM` = "
           f"{fit['approximate_from']:,} an exact search would take about {fit['exact_ms_at_approximate_from']:.1f} ms.",
           "", "qa counts *passages* against `APPROXIMATE_FROM` (`faiss_params(len(vectors.passages))`) and searches "
           "one index per question (sentence vectors are gone: MaxSim over stored tokens replaced them)."]
    return out


SectionTable = Callable[[dict, dict], list[str]]
TABLES: dict[str, SectionTable] = {"indexing": _md_indexing, "storage": _md_storage, "latency": _md_latency,
                                   "load": _md_load, "threads": _md_threads, "coldstart": _md_coldstart,
                                   "repl": _md_repl, "quality": _md_quality, "scaling": _md_scaling,
                                   "stores": lambda results, section: _md_stores(results, section, _note(section))}


def _md_stores(results: dict, section: dict, note: str) -> list[str]:
    """BENCHMARKS.md's stores tables."""
    out = ["## Vector stores: FAISS exact, FAISS approximate, Milvus Lite" + note, "",
           f"Synthetic unit vectors (dim {results['dim']}, the generator of the scaling section); {results['queries']} "
           f"queries, each a noisy copy of a stored vector; one query per call, k={results['k']} (the candidates qa "
           "asks a store for). Recall@10: share of the exact top 10 found. RAM: growth of this process's RSS over the "
           "build (Milvus Lite runs inside the process), per vector; disk: the serialised FAISS index, or the "
           "Milvus Lite folder after flush (with the doc-id and date fields qa stores), per vector. Milvus Lite is "
           "written through qa's `MilvusStore` (upserts of 1,000 rows, flush, index built, loaded) and searched with "
           "the first 50 queries; its filtered search (an `array_contains_any` scalar filter matching 10% of the "
           "rows) with the first 10, and only up to 100k.", "",
           "| vectors | system | build (s) | p50 (ms) | p95 (ms) | recall@10 | RAM B/vector | disk B/vector |",
           "|---|---|---|---|---|---|---|---|"]
    for row in results["synthetic"]:
        for name, r in row["systems"].items():
            out.append(f"| {fmt(row['n'])} | {name} | {fmt(r['build_s'], 1)} | {fmt(r['median_ms'], 2)} | "
                       f"{fmt(r['p95_ms'], 2)} | {fmt(r.get('recall@10'), 3)} | {fmt(r['ram_bytes_per_vector'], 0)} | "
                       f"{fmt(r['disk_bytes_per_vector'], 0)} |")
        for skipped in row.get("skipped", []):
            out.append(f"| {fmt(row['n'])} | not built: {skipped} | | | | | | |")
    ray = results.get("ray")
    if ray:
        out += ["", f"### Ray Data embedding ({ray['passages']} PIAF paragraphs, {ray['mean_chars']} characters on "
                    f"average; local Ray started in {ray['ray_start_s']} s, actors warmed up before timing; two "
                    "interleaved rounds)", "",
                "| system | seconds | passages/s | speed vs single process |", "|---|---|---|---|"]
        out += [f"| {name} | {fmt(r['seconds'], 1)} | {fmt(r['passages_per_s'], 1)} | {r['speed_vs_single']:.2f}× |"
                for name, r in ray["systems"].items()]
    return out + [""]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
