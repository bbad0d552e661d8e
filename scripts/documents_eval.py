"""EVALUATION.md, "Documents": how well qa's readers extract documents, against ground truth.

HTML main text, on two public sets, qa's passages (what `qa text` prints, headings included)
next to the bare library's own output (``trafilatura.extract``, default settings) in the same run:

* the Scrapinghub article-extraction benchmark (181 pages, English, with each page's reference
  article body): the benchmark's own metric (F1 over 4-word shingles, precision and recall
  averaged over pages, as its ``evaluate.py``) and a token-level F1 (the same over single words);
* trafilatura's evaluation pages in French (``tests/evaldata.json``: for each page, snippets
  that must be in the extraction and snippets of page furniture that must not).

PDF text against a reference where one exists (the report LibreOffice laid out, whose text is
in tests/fixtures/documents/sources/report.py), PDFium (qa's reader) next to pypdf.

    git clone https://github.com/scrapinghub/article-extraction-benchmark /tmp/aeb
    git clone https://github.com/adbar/trafilatura /tmp/trafilatura
    .venv/bin/python scripts/documents_eval.py --benchmark /tmp/aeb --trafilatura /tmp/trafilatura

prints the Markdown section (and ``--json FILE`` writes the figures).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import runpy
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.ingest import load_corpus  # noqa: E402

_TOKEN = re.compile(r"\w+", re.UNICODE)


# --------------------------------------------------------------------------- metric (the benchmark's)


def matching(true: str, pred: str, n: int) -> tuple[float, float, float]:
    """TP, FP, FN over n-word shingles, normalised per page (the benchmark's evaluate.py)."""
    def shingles(text: str) -> Counter:
        tokens = _TOKEN.findall(text or "")
        return Counter(tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i:i + n])

    a, b = shingles(true), shingles(pred)
    tp = sum(min(a[k], b[k]) for k in a.keys() | b.keys())
    fp = sum(max(0, b[k] - a[k]) for k in a.keys() | b.keys())
    fn = sum(max(0, a[k] - b[k]) for k in a.keys() | b.keys())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def scores(counts: list[tuple[float, float, float]]) -> dict[str, float]:
    def ratio(tp, other):
        return 1.0 if other == 0 and tp == 0 else (0.0 if tp == 0 else tp / (tp + other))

    precision = statistics.mean(1.0 if fp == fn == 0 else ratio(tp, fp) for tp, fp, fn in counts if tp + fp > 0)
    recall = statistics.mean(1.0 if fp == fn == 0 else ratio(tp, fn) for tp, fp, fn in counts if tp + fn > 0)
    return {"f1": 2 * precision * recall / (precision + recall), "precision": precision, "recall": recall}


# --------------------------------------------------------------------------- extraction


def qa_text(path: Path) -> str:
    """The text qa indexes from a page: its passages, each after the headings before it."""
    corpus = load_corpus(path, use_cache=False)
    parts, last_context = [], None
    for passage in corpus.passages:
        if passage.context and passage.context != last_context:
            parts.append(passage.context.replace(" — ", "\n"))
        last_context = passage.context
        parts.append(passage.text)
    return "\n".join(parts)


def bare_text(html: bytes) -> str:
    import trafilatura

    return trafilatura.extract(html) or ""


def html_benchmark(folder: Path) -> dict:
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    runs: dict[str, dict[int, list]] = {"qa": {1: [], 4: []}, "trafilatura": {1: [], 4: []}}
    with tempfile.TemporaryDirectory() as tmp:
        for key, item in sorted(truth.items()):
            html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
            page = Path(tmp) / f"{key}.html"
            page.write_bytes(html)
            try:
                ours = qa_text(page)
            except Exception:  # noqa: BLE001 - a page qa cannot read scores as empty
                ours = ""
            for name, text in (("qa", ours), ("trafilatura", bare_text(html))):
                for n in (1, 4):
                    runs[name][n].append(matching(item["articleBody"], text, n))
    return {"pages": len(truth), **{name: {"tokens": scores(r[1]), "shingles": scores(r[4])}
                                    for name, r in runs.items()}}


def french_snippets(repo: Path) -> dict:
    data = json.loads((repo / "tests" / "evaldata.json").read_text(encoding="utf-8"))
    found = {"qa": [0, 0], "trafilatura": [0, 0]}  # [with found, without absent]
    totals = [0, 0]
    pages = 0
    with tempfile.TemporaryDirectory() as tmp:
        for url, item in data.items():
            if not re.search(r"\.fr/", url):
                continue
            source = next((p for d in ("eval", "cache") if (p := repo / "tests" / d / item["file"]).exists()), None)
            if source is None:
                continue
            pages += 1
            page = Path(tmp) / "page.html"
            page.write_bytes(source.read_bytes())
            try:
                ours = qa_text(page)
            except Exception:  # noqa: BLE001
                ours = ""
            texts = {"qa": ours, "trafilatura": bare_text(source.read_bytes())}
            totals[0] += len(item["with"])
            totals[1] += len(item["without"])
            for name, text in texts.items():
                found[name][0] += sum(s in text for s in item["with"])
                found[name][1] += sum(s not in text for s in item["without"])
    return {"pages": pages, "with": totals[0], "without": totals[1],
            **{name: {"with_found": w / totals[0], "without_absent": wo / totals[1]} for name, (w, wo) in found.items()}}


def pdf_reference() -> dict:
    """The LibreOffice report: token F1 of each engine's text against the source paragraphs."""
    import pypdf
    import pypdfium2 as pdfium

    docs = REPO / "tests" / "fixtures" / "documents"
    source = runpy.run_path(str(docs / "sources" / "report.py"))
    rows = [" ".join(row) for row in source["TABLE"]]
    reference = "\n".join([source["TITLE"]] + [t for h, ps in source["SECTIONS"] for t in [h, *ps]] + rows)
    pdf = docs / "report.pdf"
    document = pdfium.PdfDocument(str(pdf))
    bare_pdfium = "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    pypdf_text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(str(pdf)).pages)
    out = {}
    for name, text in (("qa (PDFium, paragraphs rebuilt)", qa_text(pdf)), ("PDFium bare", bare_pdfium),
                       ("pypdf bare", pypdf_text)):
        out[name] = {"tokens": scores([matching(reference, text, 1)]), "shingles": scores([matching(reference, text, 4)])}
    return out


# --------------------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = ["## Documents", "",
             "How well qa's readers extract documents (`qa/ingest/readers/`), measured by "
             "`scripts/documents_eval.py` (command in its docstring). qa's text is what `qa text` prints "
             "(passages, each after its headings); the bare library's output comes from the same run.", ""]
    h = results.get("html")
    if h:
        lines += [f"**HTML main text**: Scrapinghub article-extraction benchmark, {h['pages']} pages with their "
                  "reference article body. *Shingles* is the benchmark's own metric (4-word shingles, precision "
                  "and recall averaged over pages: its published table gives trafilatura 2.0.0 F1 0.958); "
                  "*tokens* is the same over single words.", "",
                  "| extractor | F1 (shingles) | precision | recall | F1 (tokens) | precision | recall |",
                  "|---|---|---|---|---|---|---|"]
        for name in ("qa", "trafilatura"):
            s, t = h[name]["shingles"], h[name]["tokens"]
            label = "qa text (trafilatura + qa's cleaning)" if name == "qa" else "trafilatura.extract, bare"
            lines.append(f"| {label} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                         f"{t['f1']:.3f} | {t['precision']:.3f} | {t['recall']:.3f} |")
        lines.append("")
    f = results.get("french")
    if f:
        lines += [f"**French pages**: trafilatura's evaluation set, its {f['pages']} pages of .fr sites, with "
                  f"{f['with']} snippets of article text that must be extracted and {f['without']} snippets of "
                  "page furniture that must not.", "",
                  "| extractor | article snippets found | furniture snippets left out |", "|---|---|---|"]
        for name, label in (("qa", "qa text"), ("trafilatura", "trafilatura.extract, bare")):
            lines.append(f"| {label} | {f[name]['with_found']:.3f} | {f[name]['without_absent']:.3f} |")
        lines.append("")
    p = results.get("pdf")
    if p:
        lines += ["**PDF text** against its source: `report.pdf` (LibreOffice, 3 pages, running header and footer), "
                  "reference = the paragraphs, headings and table of `sources/report.py`.", "",
                  "| engine | F1 (tokens) | precision | F1 (shingles) | precision |", "|---|---|---|---|---|"]
        for name, r in p.items():
            lines.append(f"| {name} | {r['tokens']['f1']:.3f} | {r['tokens']['precision']:.3f} | "
                         f"{r['shingles']['f1']:.3f} | {r['shingles']['precision']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def checkout_parser(description: str) -> argparse.ArgumentParser:
    """The options both document scripts take: the public checkouts, and where the JSON goes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--benchmark", type=Path, help="a checkout of scrapinghub/article-extraction-benchmark")
    parser.add_argument("--trafilatura", type=Path, help="a checkout of adbar/trafilatura (tests/eval, evaldata.json)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser


def main() -> None:
    args = checkout_parser(__doc__.splitlines()[0]).parse_args()
    results: dict = {}
    if args.benchmark:
        results["html"] = html_benchmark(args.benchmark)
    if args.trafilatura:
        results["french"] = french_snippets(args.trafilatura)
    results["pdf"] = pdf_reference()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
