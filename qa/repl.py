"""The interactive session: `qa` with no arguments, or `qa repl --index DIR`.

The prompt appears at once; the index and the model load in a background thread, and a question
typed before they are ready waits for them (Ctrl-C gives up waiting). Questions run in a worker
thread so that Ctrl-C abandons a running search without leaving the session. Lines starting with
':' are commands (:help lists them). Output goes through prompt_toolkit, so text printed while
the prompt is shown (the "ready" line, for one) lands above it instead of through it.

:class:`Repl` takes the pieces a test needs to replace: a zero-argument factory returning a
:class:`~qa.ranking.search.Retriever`, a prompt_toolkit input and output, and the history file.
"""

from __future__ import annotations

import contextvars
import difflib
import fnmatch
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.renderer import print_formatted_text as _render_to_output
from prompt_toolkit.styles import default_ui_style

from . import render
from .errors import QAError, unexpected
from .fileops import sha256_file
from .ingest import read_text
from .ingest.chunking import is_window
from .paths import debug, history_path, state_dir  # noqa: F401  (state_dir: its former home)
from .ranking import check_date, check_k
from .ranking.search import Answer, Hit, Retriever

WELCOME = "qa — ask a question in English or French; :help for commands, Ctrl-D to quit."
DEFAULT_K = 5
MAX_WIDTH = 120


@dataclass(frozen=True)
class Command:
    """A REPL command: its name, arguments and help as :help shows them, the `Repl` method that
    runs it (None: :quit) and its aliases. Completion offers the names only."""

    name: str
    args: str
    help: str
    method: str | None
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command(":help", "", "this help", "_cmd_help", (":h", ":?")),
    Command(":k", "[N]", "number of passages to show", "_cmd_k"),
    Command(":doc", "[GLOB]", "only documents whose id matches GLOB, e.g. '003_*' (no GLOB: any)", "_cmd_doc"),
    Command(":from", "[DATE]", "only passages dated on or after DATE: YYYY, YYYY-MM or YYYY-MM-DD (no DATE: any)",
            "_cmd_from"),
    Command(":to", "[DATE]", "only passages dated on or before DATE (no DATE: any)", "_cmd_to"),
    Command(":filters", "", "show the filters", "_cmd_filters", (":filter",)),
    Command(":clear", "[doc|from|to]", "clear the filters, or one of them", "_cmd_clear"),
    Command(":show", "N", "hit N of the last answer in full, with all its sources", "_cmd_show"),
    Command(":article", "N", "the whole article of hit N, its passage highlighted (also :more N, :show N --article)",
            "_cmd_article"),
    Command(":more", "N", "same as :article N", "_cmd_article"),
    Command(":json", "[on|off]", "print answers as JSON (toggles)", "_cmd_json"),
    Command(":reindex", "", "update the index from its sources (only new or changed passages are embedded)",
            "_cmd_reindex"),
    Command(":stats", "", "index statistics", "_cmd_stats"),
    Command(":quit", "", "leave (also :q, :exit, Ctrl-D)", None, (":q", ":exit")),
)
BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}
ALIASES = {alias: c.name for c in COMMANDS for alias in c.aliases}
FILTER_KEYS = {"doc": "doc", "from": "date_from", "to": "date_to"}


def default_history_path() -> Path:
    return history_path()


# --------------------------------------------------------------------------- the session


class Repl:
    """One interactive session. `run()` loops on the prompt; `handle_line()` runs one line."""

    def __init__(self, retriever_factory: Callable[[], object], input=None, output=None,
                 history_path: str | os.PathLike | None = None, colour: bool | None = None):
        self.retriever_factory = retriever_factory
        self.input = input
        if output is None:
            from prompt_toolkit.output import create_output

            output = create_output()
        self.output = output
        self.history_path = Path(history_path) if history_path is not None else default_history_path()
        if colour is None:
            colour = render.use_colour(getattr(output, "stdout", None) or _NotATerminal())
        self.colour = colour
        self.k = DEFAULT_K
        self.filters: dict[str, str | None] = {"doc": None, "date_from": None, "date_to": None}
        self.json = False
        self.last: Answer | None = None
        self.session: PromptSession | None = None
        self._retriever = None
        self._load_error: BaseException | None = None
        self._ready = threading.Event()
        self._loader: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._load_started = 0.0
        self._pending: list[str] = []
        self._print_lock = threading.RLock()
        self._context: contextvars.Context | None = None
        self._style = default_ui_style()
        self._warned_encoding = False

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        """Prompt until Ctrl-D or :quit; always 0 (errors are reported and the session goes on)."""
        self._context = contextvars.copy_context()
        self.session = PromptSession(
            input=self.input, output=self.output, history=self._history(), auto_suggest=AutoSuggestFromHistory(),
            completer=ReplCompleter(self), complete_while_typing=False, enable_history_search=True)
        self.say(WELCOME)
        self.start_loading()
        if not self._ready.is_set():
            self.say("loading the model and the index in the background…", style="dim")
        while True:
            try:
                self._flush_pending()
                line = self.session.prompt(self._prompt_message())
            except KeyboardInterrupt:
                continue  # Ctrl-C: drop the line, prompt again
            except EOFError:
                break  # Ctrl-D
            try:
                if not self.handle_line(line):
                    break
            except KeyboardInterrupt:
                self.say("cancelled")
        self._flush_pending()
        return 0

    def handle_line(self, line: str) -> bool:
        """Run one line (a question or a :command); False when the session should end."""
        line = self._valid(line).strip()
        if not line:
            return True
        try:
            if line.startswith(":"):
                return self._command(line)
            self._ask(line)
        except QAError as exc:
            self.error(str(exc))
        except KeyboardInterrupt:
            self.say("cancelled")
        except Exception as exc:  # noqa: BLE001 - the session survives anything: one line, details on demand
            self.error(self._unexpected(exc, line.split(" ", 1)[0] if line.startswith(":") else "question"))
        return True

    def _valid(self, line: str) -> str:
        """The line with undecodable bytes (surrogates from the terminal) replaced; said once."""
        from .text import valid_text

        clean = valid_text(line)
        if clean != line and not self._warned_encoding:
            self._warned_encoding = True
            self.say("note: the input is not valid UTF-8; undecodable bytes were replaced by \ufffd", style="dim")
        return clean

    def _unexpected(self, exc: Exception, command: str) -> str:
        """One line for a bug; with QA_DEBUG=1 the traceback is printed first."""
        if debug():
            import traceback

            self.say(traceback.format_exc(), ansi=False)
        return unexpected(exc, command)

    # ------------------------------------------------------------------ loading

    def start_loading(self) -> None:
        """Open the retriever in a background thread (once)."""
        if self._loader is not None:
            return
        self._load_started = time.perf_counter()
        self._loader = threading.Thread(target=self._load, name="qa-load", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            retriever = self.retriever_factory()
            self._retriever = retriever
            seconds = time.perf_counter() - self._load_started
            index = retriever.index
            if index.note:
                self.notify(f"warning: {index.note}", style="error")
            self.notify(f"ready: {len(index)} passages from {len(index.documents)} documents, "
                        f"model {index.manifest.model_id} ({seconds:.1f} s)", style="dim")
        except BaseException as exc:  # noqa: BLE001 - reported in the session, never raised here
            self._load_error = exc
            self.notify(_error_line(exc, "cannot open the index"), style="error")
        finally:
            self._ready.set()

    @property
    def retriever(self):
        """The retriever, waiting for it (interruptibly) if it is still loading."""
        self.start_loading()
        if not self._ready.is_set():
            self.say("loading the model…", style="dim")
            while not self._ready.wait(0.1):
                self._flush_pending()
        self._flush_pending()
        if self._retriever is None:
            raise QAError(_error_line(self._load_error, "the index could not be opened").removeprefix("error: ")
                          + "; :quit and fix it")
        return self._retriever

    # ------------------------------------------------------------------ questions

    def _ask(self, question: str) -> None:
        retriever = self.retriever
        try:
            answer = self._interruptible(lambda: retriever.ask(question, self.k, **self.filters))
        except QAError as exc:
            hint = " (:filters shows them, :clear clears them)" if any(self.filters.values()) else ""
            raise QAError(f"{exc}{hint}") from None
        self.last = answer
        if self.json:
            self.say(render.to_json(answer), ansi=False)
            return
        self.say(render.render_answer(answer, colour=self.colour, width=self.width()))

    def _interruptible(self, work: Callable[[], object], abandoned: Callable[[object], None] | None = None):
        """Run `work` in a worker thread and wait; Ctrl-C stops waiting (the work is abandoned)."""
        box: dict[str, object] = {}
        gave_up, finished = threading.Event(), threading.Event()

        def target():
            try:
                box["result"] = work()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the waiting thread
                box["error"] = exc
            finished.set()
            if gave_up.is_set() and abandoned is not None:
                abandoned(box)

        worker = threading.Thread(target=target, name="qa-work", daemon=True)
        self._workers.add(worker)
        worker.start()
        try:
            # Wait on an Event, not on worker.join(): a KeyboardInterrupt inside Thread.join leaves
            # the thread's state lock inconsistent, and the interpreter then aborts at exit.
            while not finished.wait(0.05):
                pass
        except KeyboardInterrupt:
            gave_up.set()
            raise
        self._workers.discard(worker)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box.get("result")

    def busy(self, grace: float = 0.0) -> bool:
        """Whether a background thread (loading, an abandoned search or update) still runs after `grace` s."""
        deadline = time.monotonic() + grace
        threads = [t for t in (self._loader, *self._workers) if t is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return any(t.is_alive() for t in threads)

    # ------------------------------------------------------------------ commands

    def _command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        name = ALIASES.get(name.lower(), name.lower())
        command = BY_NAME.get(name)
        if command is None:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1, cutoff=0.75)
            maybe = f" (did you mean {ALIASES.get(close[0], close[0])}?)" if close else ""
            self.say(f"unknown command {name}{maybe} — type :help")
            return True
        if command.method is None:
            return False
        getattr(self, command.method)(rest.strip())
        return True

    def _cmd_help(self, arg: str) -> None:
        rows = [f"  {c.name + (' ' + c.args if c.args else ''):<22}{c.help}" for c in COMMANDS]
        self.say("commands:\n" + "\n".join(rows) + "\n"
                 "Anything else is a question, in English or French. Tab completes commands and their arguments;\n"
                 "Up/Down and Ctrl-R search the history; Ctrl-C cancels the line or a running search.\n"
                 f"now: k={self.k}, {self._describe_filters()}, JSON {'on' if self.json else 'off'}")

    def _cmd_k(self, arg: str) -> None:
        if not arg:
            self.say(f"k = {self.k} (:k N to change)")
            return
        try:
            k = int(arg)
        except ValueError:
            raise QAError(f":k takes a whole number, not {arg!r}") from None
        self.k = check_k(k)
        self.say(f"k = {k}")

    def _cmd_doc(self, arg: str) -> None:
        self._set_filter("doc", arg)

    def _cmd_from(self, arg: str) -> None:
        self._set_filter("date_from", arg)

    def _cmd_to(self, arg: str) -> None:
        self._set_filter("date_to", arg)

    def _set_filter(self, key: str, value: str) -> None:
        if value and key != "doc":
            value = check_date(value)
        self.filters[key] = value or None
        self.say(self._describe_filters())

    def _cmd_filters(self, arg: str) -> None:
        self.say(self._describe_filters())

    def _cmd_clear(self, arg: str) -> None:
        if not arg:
            self.filters = dict.fromkeys(self.filters)
            self.say("filters cleared")
            return
        if arg not in FILTER_KEYS:
            raise QAError(f":clear takes doc, from or to, not {arg!r}")
        self.filters[FILTER_KEYS[arg]] = None
        self.say(self._describe_filters())

    def _describe_filters(self) -> str:
        parts = [f"{label} {self.filters[key]}" for label, key in FILTER_KEYS.items() if self.filters[key]]
        return "filters: " + (", ".join(parts) if parts else "none")

    def _cmd_json(self, arg: str) -> None:
        if arg.lower() in ("on", "off"):
            self.json = arg.lower() == "on"
        elif arg:
            raise QAError(f":json takes on or off, not {arg!r}")
        else:
            self.json = not self.json
        self.say(f"JSON output {'on' if self.json else 'off'}")

    def _cmd_show(self, arg: str) -> None:
        words = arg.split()
        if "--article" in words:
            words.remove("--article")
            self._cmd_article(" ".join(words))
            return
        hit = self._hit(" ".join(words), ":show")
        if self.json:
            self.say(render.to_json(hit), ansi=False)
            return
        documents = self._documents()
        paths = {doc_id: d.path for doc_id, d in documents.items()}
        self.say(render.render_details(hit, colour=self.colour, width=self.width(), paths=paths,
                                       partial=_is_window(hit, documents.get(hit.doc_id))))

    def _cmd_article(self, arg: str) -> None:
        hit = self._hit(arg.replace("--article", "").strip(), ":article")
        document = self._documents().get(hit.doc_id)
        if document is None:
            raise QAError(f"{hit.doc_id} is no longer in the index (:reindex updated it?)")
        text = read_text(document.file())
        self.say(render.render_article(document, text, hit, colour=self.colour, width=self.width(),
                                       changed=_sha256(document.file()) != document.sha256))

    def _hit(self, arg: str, command: str) -> Hit:
        if self.last is None:
            raise QAError(f"no answer yet: ask a question, then {command} N")
        if not self.last.hits:
            raise QAError("the last answer has no hits")
        if not arg:
            raise QAError(f"{command} takes a hit number, 1 to {len(self.last.hits)}")
        try:
            n = int(arg)
        except ValueError:
            raise QAError(f"{command} takes a hit number, not {arg!r}") from None
        if not 1 <= n <= len(self.last.hits):
            raise QAError(f"no hit {n}: the last answer has {len(self.last.hits)}")
        return self.last.hits[n - 1]

    def _documents(self) -> dict:
        return {d.doc_id: d for d in self.retriever.index.documents}

    def _cmd_stats(self, arg: str) -> None:
        stats = self.retriever.index.describe()
        self.say(render.to_json(stats, exclude_none=True) if self.json else render.render_stats(stats), ansi=False)

    def _cmd_reindex(self, arg: str) -> None:
        retriever = self.retriever
        path = retriever.index.path
        self.say(f"updating the index at {path}…", style="dim")

        def work():
            self._retriever, report = retriever.reindexed()
            return report

        def finished_in_background(box):
            if "result" in box:
                self.notify(box["result"].summary())
            else:
                self.notify(_error_line(box["error"], "the index update failed"), style="error")

        try:
            report = self._interruptible(work, abandoned=finished_in_background)
        except KeyboardInterrupt:
            self.say("the update goes on in the background; the session switches to the new index when it is done")
            return
        for warning in report.warnings:
            self.say(f"warning: {warning}", style="dim")
        self.say(report.summary())

    # ------------------------------------------------------------------ output

    def width(self) -> int:
        try:
            columns = self.output.get_size().columns
        except Exception:  # noqa: BLE001 - a size is only a preference
            columns = 100
        return max(40, min(columns, MAX_WIDTH))

    def say(self, text: str, *, style: str = "", ansi: bool = True) -> None:
        """Print a message (ANSI colours allowed) on the session's output."""
        text = render.paint(text, style, self.colour)
        formatted = ANSI(text + "\n") if ansi and "\x1b" in text else FormattedText([("", text + "\n")])
        with self._print_lock:
            _render_to_output(self.output, formatted, self._style)

    def error(self, message: str) -> None:
        self.say(_error_line(message), style="error")

    def notify(self, text: str, *, style: str = "") -> None:
        """Print from another thread: above the prompt when it is shown, else at the next chance."""
        text = render.paint(text, style, self.colour)
        with self._print_lock:
            self._pending.append(text)
        app = self.session.app if self.session is not None else None
        loop = getattr(app, "loop", None) if app is not None and app.is_running else None
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(lambda: run_in_terminal(self._flush_pending), context=self._context)
        except RuntimeError:
            pass  # the prompt just ended: the main thread prints it before the next one

    def _flush_pending(self) -> None:
        with self._print_lock:
            pending, self._pending = self._pending, []
            for text in pending:
                self.say(text)

    def _prompt_message(self) -> str:
        parts = [f"{label}={self.filters[key]}" for label, key in FILTER_KEYS.items() if self.filters[key]]
        return f"qa [{' '.join(parts)}]> " if parts else "qa> "

    def _history(self) -> History:
        try:
            self.history_path.parent.mkdir(parents=True, exist_ok=True)
            self.history_path.touch(exist_ok=True)
            return FileHistory(str(self.history_path))
        except OSError as exc:
            self.error(f"cannot keep the history in {self.history_path} ({exc.strerror or exc}); "
                       "this session's history will not be saved")
            return InMemoryHistory()


# --------------------------------------------------------------------------- completion


class ReplCompleter(Completer):
    """Commands after ':', then their arguments: numbers, document ids, dates, on/off, filter keys."""

    def __init__(self, repl: Repl):
        self.repl = repl

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        if not text.startswith(":"):
            return
        if " " not in text:
            for command in COMMANDS:
                if command.name.startswith(text.lower()):
                    yield Completion(command.name, start_position=-len(text), display_meta=command.help)
            return
        name, _, rest = text.partition(" ")
        name = ALIASES.get(name.lower(), name.lower())
        words = rest.split(" ")
        word, before = words[-1], [w for w in words[:-1] if w]
        for candidate, meta in self.arguments(name, before):
            if candidate.startswith(word) or (name == ":doc" and fnmatch.fnmatch(candidate, f"*{word}*")):
                yield Completion(candidate, start_position=-len(word), display_meta=meta)

    def arguments(self, name: str, before: list[str]) -> list[tuple[str, str]]:
        repl = self.repl
        if name in (":show", ":article", ":more"):
            hits = repl.last.hits if repl.last is not None else []
            if before:
                return [("--article", "the whole article")] if name == ":show" and len(before) == 1 else []
            return [(str(h.rank), f"{h.doc_id} ¶{h.paragraph}") for h in hits]
        if before:
            return []
        if name == ":k":
            return [(str(n), "hits" + (" (now)" if n == repl.k else "")) for n in (1, 3, 5, 10, 20)]
        if name == ":json":
            return [("on", "print JSON"), ("off", "print text")]
        if name == ":clear":
            return [(key, f"clear the {key} filter") for key in FILTER_KEYS]
        retriever = repl._retriever  # never wait for the model while completing
        if retriever is None:
            return []
        documents = retriever.index.documents
        if name == ":doc":
            return [(d.doc_id, d.title or "") for d in documents]
        if name in (":from", ":to"):
            dates = sorted({d.date[:n] for d in documents if d.date for n in (4, 7, 10) if len(d.date) >= n})
            return [(date, "") for date in dates]
        return []


# --------------------------------------------------------------------------- helpers


class _NotATerminal:
    def isatty(self) -> bool:
        return False


def _sha256(path: str | os.PathLike) -> str | None:
    try:
        return sha256_file(Path(path))
    except OSError:
        return None


def _is_window(hit: Hit, document) -> bool:
    """Whether the hit's passage is one window of a paragraph too long for the model."""
    if document is None:
        return False
    try:
        text = read_text(document.file())
    except QAError:
        return False
    return is_window(text, hit.start, hit.end)


def _error_line(error, prefix: str | None = None) -> str:
    """One line for an error: QAError messages as they are, anything else with its type."""
    if isinstance(error, QAError) or isinstance(error, str):
        message = str(error)
    elif isinstance(error, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"{type(error).__name__}: {error}"
        if prefix:
            message = f"{prefix}: {message}"
    return "error: " + " ".join(message.split())


def run_repl(index: str | None = None, model: str | None = None, *, backend: str | None = None,
             threads: int | None = None, store: str | None = None, precision: str | None = None) -> int:
    """`qa` / `qa repl`: the session over `index` (default: embeddings/, built first if missing)."""
    from prompt_toolkit.patch_stdout import patch_stdout

    repl: Repl

    def open_retriever():
        # Messages (e.g. building the default index on first run) go above the prompt.
        retriever = Retriever.open(index, model, backend=backend, threads=threads, precision=precision,
                                   build_missing=True,
                                   notify=lambda m: repl.notify(m, style="dim"), store=store)
        retriever.warm_up()
        return retriever

    repl = Repl(open_retriever)
    # Library chatter written to stdout/stderr while the model loads goes above the prompt.
    with patch_stdout(raw=True):
        code = repl.run()
    if repl.busy(grace=1.0):
        # Leaving while the model loads or an abandoned search runs: the interpreter's normal exit
        # would tear torch down under that thread ("terminate called without an active exception",
        # SIGABRT). Nothing is left to save (history is written line by line, index builds are
        # atomic), so end the process now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
