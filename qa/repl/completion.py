"""Tab completion in the REPL: commands after ':', then their arguments."""

from __future__ import annotations

import fnmatch

from prompt_toolkit.completion import Completer, Completion

from .commands import ALIASES, COMMANDS, FILTER_KEYS


class ReplCompleter(Completer):
    """Commands after ':', then their arguments: numbers, document ids, dates, on/off, filter keys."""

    def __init__(self, repl):
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
