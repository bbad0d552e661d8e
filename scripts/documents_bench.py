"""BENCHMARKS.md, "Documents": how fast qa reads documents, against the libraries' bare speed.

* PDF pages/s: PDFium bare (pypdfium2, the text of each page), qa's PDF reader (PDFium plus
  lines, paragraphs, headers and footers rebuilt) and pypdf bare (``extract_text``), on a real
  117-page LaTeX book (py-pdf sample-files' GeoTopo), on 300 pages made of its pages, and on a
  PDF that LibreOffice writes of the Scrapinghub set's 181 reference articles (259 pages).
* PDF text quality: on the two-column paper, line-end hyphenation left in each engine's text.
* HTML files/s: trafilatura bare (``bare_extraction``), qa's HTML reader, and the whole
  ingestion of a folder (``load_corpus``: parse, classify, split) in one process, in parallel
  worker processes, and again with the extraction cache warm; on the 181 pages of the Scrapinghub
  benchmark and on 1,000 pages (those, trafilatura's evaluation pages, and its test cache).
* ``qa index`` of a folder (with the model): HTML pages and the 300-page PDF, cold and again.

    git clone https://github.com/py-pdf/sample-files /tmp/sample-files
    git clone https://github.com/scrapinghub/article-extraction-benchmark /tmp/aeb
    git clone https://github.com/adbar/trafilatura /tmp/trafilatura
    .venv/bin/python scripts/documents_bench.py --samples /tmp/sample-files --benchmark /tmp/aeb \\
        --trafilatura /tmp/trafilatura [--index-pages 100] [--index-pdf]

prints the Markdown section (``--json FILE`` writes the figures). Times are the best of
``--repeat`` runs (default 2) on a machine whose CPUs other jobs share.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.ingest import extraction, load_corpus  # noqa: E402
from qa.ingest.readers import html as html_reader  # noqa: E402
from qa.ingest.readers import pdf as pdf_reader  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# --------------------------------------------------------------------------- PDF


def make_long_pdf(source: Path, out: Path, pages: int) -> Path:
    """A `pages`-page PDF of `source`'s pages repeated (PDFium's own page import)."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(source))
    dest = pdfium.PdfDocument.new()
    while len(dest) < pages:
        dest.import_pages(src, list(range(min(len(src), pages - len(dest)))))
    dest.save(str(out))
    return out


def make_report_pdf(benchmark: Path, out: Path, pages: int) -> Path | None:
    """A LibreOffice PDF of distinct prose: the benchmark's reference article bodies, one
    heading per article, cut at `pages` pages (None without soffice)."""
    if shutil.which("soffice") is None:
        return None
    import html

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "documents"))
    from make_fixtures import NS, convert

    truth = json.loads((benchmark / "ground-truth.json").read_text(encoding="utf-8"))
    body = []
    for i, item in enumerate(truth.values()):
        body.append(f'<text:h text:outline-level="1">Article {i + 1}</text:h>')
        body += [f"<text:p>{html.escape(p)}</text:p>" for p in item["articleBody"].split("\n") if p.strip()]
    source = out.with_suffix(".fodt")
    source.write_text(f'<?xml version="1.0" encoding="UTF-8"?><office:document {NS} office:version="1.3" '
                      'office:mimetype="application/vnd.oasis.opendocument.text"><office:body><office:text>'
                      + "".join(body) + "</office:text></office:body></office:document>", encoding="utf-8")
    convert(source, "pdf", out.parent)
    import pypdfium2 as pdfium

    full = pdfium.PdfDocument(str(out.with_suffix(".pdf")))
    cut = pdfium.PdfDocument.new()
    cut.import_pages(full, list(range(min(pages, len(full)))))
    cut.save(str(out))
    return out


def pdf_speed(path: Path, repeat: int) -> dict:
    import pypdf
    import pypdfium2 as pdfium

    data = path.read_bytes()

    def pdfium_bare():
        document = pdfium.PdfDocument(data)
        for i in range(len(document)):
            page = document[i]
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
        document.close()

    def pypdf_bare():
        for page in pypdf.PdfReader(str(path)).pages:
            page.extract_text()

    n = len(pdfium.PdfDocument(data))
    timings = {"PDFium bare": best(pdfium_bare, repeat), "qa PDF reader": best(lambda: pdf_reader.read(data, path), repeat),
               "pypdf bare": best(pypdf_bare, max(1, repeat - 1))}
    return {"file": path.name, "pages": n, **{k: {"seconds": v, "pages_per_s": n / v} for k, v in timings.items()}}


def hyphen_fragments(path: Path) -> dict:
    """Words split by a line-end hyphen that each engine's text leaves (a fragment ending in '-',
    or PDFium's U+FFFE / U+0002 mark), and whether qa's text keeps any."""
    import pypdf
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    texts = {"PDFium bare": "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document))),
             "pypdf bare": "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages),
             "qa PDF reader": "\n".join(p.text for p in pdf_reader.read(path.read_bytes(), path).pieces)}
    pattern = re.compile(r"[a-zà-ÿ][\ufffe\x02]|[a-zà-ÿ]-\s*\n\s*[a-zà-ÿ]")
    return {name: len(pattern.findall(text)) for name, text in texts.items()}


# --------------------------------------------------------------------------- HTML


def html_pages(benchmark: Path | None, trafilatura_repo: Path | None, folder: Path, limit: int) -> list[Path]:
    """Up to `limit` distinct real pages written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    if benchmark:
        for gz in sorted((benchmark / "html").glob("*.html.gz")):
            target = folder / gz.name.removesuffix(".gz")
            target.write_bytes(gzip.decompress(gz.read_bytes()))
            out.append(target)
    if trafilatura_repo:
        for sub in ("eval", "cache"):
            for page in sorted((trafilatura_repo / "tests" / sub).glob("*.htm*")):
                if len(out) >= limit:
                    break
                target = folder / f"{sub}-{len(out):04d}.html"
                shutil.copyfile(page, target)
                out.append(target)
    return out[:limit]


def html_speed(pages: list[Path], folder: Path, repeat: int) -> dict:
    import trafilatura

    data = [p.read_bytes() for p in pages]
    bare = best(lambda: [trafilatura.bare_extraction(d, with_metadata=True) for d in data], repeat)

    def reader():
        for d, p in zip(data, pages):
            try:
                html_reader.read(d, p)
            except Exception:  # noqa: BLE001 - a page without text is skipped, as in a build
                pass

    ours = best(reader, repeat)
    cache = Path(tempfile.mkdtemp())
    extraction.cache_dir = lambda: cache  # the module's own cache folder, emptied per run below
    saved = extraction.PARALLEL_MIN_FILES
    extraction.PARALLEL_MIN_FILES = 10**9
    serial = best(lambda: load_corpus(folder, use_cache=False), repeat)
    extraction.PARALLEL_MIN_FILES = saved
    parallel = best(lambda: load_corpus(folder, use_cache=False), repeat)
    shutil.rmtree(cache, ignore_errors=True)
    corpus = load_corpus(folder)  # fills the cache
    warm = best(lambda: load_corpus(folder), repeat)
    n = len(pages)
    rate = lambda s: {"seconds": s, "files_per_s": n / s}  # noqa: E731
    return {"pages": n, "passages": len(corpus.passages), "skipped": len(corpus.warnings),
            "trafilatura bare_extraction": rate(bare), "qa HTML reader": rate(ours),
            "ingestion, one process": rate(serial), f"ingestion, {os.cpu_count()} worker processes": rate(parallel),
            "ingestion, cache warm": rate(warm)}


# --------------------------------------------------------------------------- qa index


def qa_index(folder: Path, index: Path) -> dict:
    """Two `qa index` runs of `folder` (cold, then unchanged): wall seconds and the summary."""
    env = {**os.environ, "QA_CACHE_DIR": os.environ.get("QA_CACHE_DIR", str(Path.home() / ".cache" / "qa"))}
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "qa", "index", "-q", str(folder), "--index", str(index)],
                                capture_output=True, text=True, env=env, cwd=REPO)
        runs.append({"seconds": time.perf_counter() - start, "summary": result.stdout.strip(),
                     "warnings": len(result.stderr.splitlines())})
    return {"cold": runs[0], "unchanged": runs[1]}


# --------------------------------------------------------------------------- report


def markdown(r: dict) -> str:
    lines = ["## Documents", "", "Reading documents (`qa/ingest/readers/`), measured by `scripts/documents_bench.py` "
             "(command in its docstring) on this 2-core machine, best of "
             f"{r['repeat']} runs; the CPUs are shared with other jobs, so read the ratios.", ""]
    if r.get("pdf"):
        lines += ["**PDF, pages per second** (parse only, text of every page):", "",
                  "| file | pages | PDFium bare | qa PDF reader | pypdf bare |", "|---|---|---|---|---|"]
        for s in r["pdf"]:
            lines.append(f"| {s['file']} | {s['pages']} | {s['PDFium bare']['pages_per_s']:.0f} | "
                         f"{s['qa PDF reader']['pages_per_s']:.0f} | {s['pypdf bare']['pages_per_s']:.1f} |")
        lines.append("")
    if "hyphens" in r:
        h = r["hyphens"]
        lines += [f"Line-end hyphenation left in the text of the two-column paper (`multicolumn.pdf`): PDFium bare "
                  f"{h['PDFium bare']} (its U+FFFE marks), pypdf bare {h['pypdf bare']}, qa {h['qa PDF reader']}.", ""]
    for key in ("html", "html_1000"):
        if key in r:
            s = r[key]
            lines += [f"**HTML, {s['pages']} real pages** ({s['passages']} passages, {s['skipped']} pages without "
                      "article text skipped):", "", "| what | seconds | files/s |", "|---|---|---|"]
            for name, v in s.items():
                if isinstance(v, dict):
                    lines.append(f"| {name} | {v['seconds']:.1f} | {v['files_per_s']:.0f} |")
            lines.append("")
    for key, label in (("index_html", "HTML pages"), ("index_pdf", "a long PDF")):
        if key in r:
            s = r[key]
            lines += [f"**`qa index` of {label}** ({s['what']}): cold {s['cold']['seconds']:.0f} s "
                      f"(`{s['cold']['summary']}`; parsing alone is in the tables above); again, unchanged, "
                      f"{s['unchanged']['seconds']:.1f} s "
                      f"(`{s['unchanged']['summary']}`).", ""]
    return "\n".join(lines)


def main() -> None:
    from documents_eval import checkout_parser

    parser = checkout_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, help="a checkout of py-pdf/sample-files")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--index-pages", type=int, default=0, metavar="N", help="also `qa index` N HTML pages")
    parser.add_argument("--index-pdf", action="store_true", help="also `qa index` the LibreOffice PDF")
    parser.add_argument("--only-index", action="store_true", help="skip the parse-speed sections")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-docbench-"))
    r: dict = {"repeat": args.repeat}
    long_pdf = make_report_pdf(args.benchmark, work / "articles-libreoffice.pdf", 300) if args.benchmark else None
    r["pdf"] = []
    if args.samples and not args.only_index:
        geotopo = args.samples / "009-pdflatex-geotopo" / "GeoTopo-komprimiert.pdf"
        r["pdf"] += [pdf_speed(geotopo, args.repeat),
                     pdf_speed(make_long_pdf(geotopo, work / "geotopo-300-pages.pdf", 300), args.repeat)]
    if long_pdf and not args.only_index:
        r["pdf"].append(pdf_speed(long_pdf, args.repeat))
    if not args.only_index:
        r["hyphens"] = hyphen_fragments(REPO / "tests" / "fixtures" / "documents" / "multicolumn.pdf")
    if args.benchmark:
        folder = work / "aeb"
        pages = html_pages(args.benchmark, None, folder, 181)
        if not args.only_index:
            r["html"] = html_speed(pages, folder, args.repeat)
    if args.benchmark and args.trafilatura and not args.only_index:
        folder = work / "html1000"
        pages = html_pages(args.benchmark, args.trafilatura, folder, 1000)
        r["html_1000"] = html_speed(pages, folder, 1)
    if args.index_pages and args.benchmark:
        folder = work / f"index{args.index_pages}"
        folder.mkdir()
        for page in sorted((work / "aeb").glob("*.html"))[: args.index_pages]:
            shutil.copy(page, folder)
        r["index_html"] = {"what": f"{args.index_pages} pages of the Scrapinghub set", **qa_index(folder, work / "i1")}
    if args.index_pdf and long_pdf:
        folder = work / "pdf300"
        folder.mkdir()
        shutil.copy(long_pdf, folder)
        r["index_pdf"] = {"what": "LibreOffice's PDF of the benchmark's 181 reference articles (259 pages: all of "
                                  "them, short of 300)",
                          **qa_index(folder, work / "i2")}
    if args.json:
        args.json.write_text(json.dumps(r, indent=2), encoding="utf-8")
    print(markdown(r))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
