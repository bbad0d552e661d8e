"""The session itself: the prompt loop, background loading, interruptible questions, output."""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.renderer import print_formatted_text as _render_to_output
from prompt_toolkit.styles import default_ui_style

from .. import render
from ..errors import QAError, unexpected
from ..paths import debug, history_path
from ..ranking.search import Answer, Retriever
from .commands import FILTER_KEYS, ReplCommands, error_line
from .completion import ReplCompleter

WELCOME = "qa — ask a question in English or French; :help for commands, Ctrl-D to quit."
DEFAULT_K = 5
MAX_WIDTH = 120


def default_history_path() -> Path:
    return history_path()


# --------------------------------------------------------------------------- the session


class Repl(ReplCommands):
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
        from ..text import valid_text

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
            self.notify(error_line(exc, "cannot open the index"), style="error")
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
            raise QAError(error_line(self._load_error, "the index could not be opened").removeprefix("error: ")
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
        self.say(error_line(message), style="error")

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




class _NotATerminal:
    def isatty(self) -> bool:
        return False



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
