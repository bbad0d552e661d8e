"""The REPL's commands: the table :help and completion read, and what each one does.

`ReplCommands` is the half of :class:`~qa.repl.session.Repl` that runs ':' lines; it relies on
the session for `retriever`, `say`, `notify`, `width` and `_interruptible`.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from .. import render
from ..errors import QAError
from ..fileops import sha256_file
from ..ingest import read_text
from ..ingest.chunking import is_window
from ..ranking import check_date, check_k
from ..ranking.search import Hit


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


class ReplCommands:
    """The ':' commands of a session (mixed into `Repl`)."""

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
                self.notify(error_line(box["error"], "the index update failed"), style="error")

        try:
            report = self._interruptible(work, abandoned=finished_in_background)
        except KeyboardInterrupt:
            self.say("the update goes on in the background; the session switches to the new index when it is done")
            return
        for warning in report.warnings:
            self.say(f"warning: {warning}", style="dim")
        self.say(report.summary())


def error_line(error, prefix: str | None = None) -> str:
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
