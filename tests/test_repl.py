"""The interactive session, driven for real: prompt_toolkit pipe input, a captured VT100 output,
the real retriever over the fixture index; and once end to end in a pseudo-terminal (pexpect)."""

from __future__ import annotations

import _thread
import io
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from qa.repl import WELCOME, Repl, ReplCompleter, default_history_path

REPO = Path(__file__).resolve().parent.parent
QUESTION = "where did Kim meet Putin?"
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")
_HEADER = re.compile(r"^(\d+)\. (\S+) ¶\d+.* · score \d\.\d{3}$", re.M)


def capture_output(columns: int = 100) -> tuple[Vt100_Output, io.StringIO]:
    buffer = io.StringIO()
    return Vt100_Output(buffer, lambda: Size(rows=40, columns=columns), term="xterm"), buffer


def plain(text: str) -> str:
    return _ESCAPES.sub("", text).replace("\r", "")


def drive(factory, keys: str | list[str], history: Path, *, colour: bool | None = None, raw: bool = False,
          timeout: float = 60) -> tuple[int, str]:
    """Run a whole session on `keys` (a list: chunks typed 0.5 s apart); returns (exit code, output
    without escape sequences)."""
    output, buffer = capture_output()
    chunks = [keys] if isinstance(keys, str) else keys
    with create_pipe_input() as pipe:
        pipe.send_text(chunks[0])

        def type_the_rest():
            for chunk in chunks[1:]:
                time.sleep(0.5)
                pipe.send_text(chunk)

        threading.Thread(target=type_the_rest, daemon=True).start()
        # A failing session must not hang the suite: closing the pipe ends the prompt (EOF).
        watchdog = threading.Timer(timeout, pipe.close)
        watchdog.start()
        try:
            code = Repl(factory, input=pipe, output=output, history_path=history, colour=colour).run()
        finally:
            watchdog.cancel()
    return code, buffer.getvalue() if raw else plain(buffer.getvalue())


def output_of(text: str, line: str, occurrence: int = 0) -> str:
    """What the session printed for one typed line, up to the next prompt."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(f"> {line}\n", start + 1)
    start += len(line) + 3
    end = text.find("\nqa", start)
    return text[start:end + 1 if end >= 0 else None]


@pytest.fixture
def session(retriever, tmp_path):
    def run(keys: str, **kwargs) -> tuple[int, str]:
        return drive(lambda: retriever, keys, tmp_path / "history", **kwargs)

    return run


# --------------------------------------------------------------------------- questions


def test_question_shows_the_ranked_passages(session):
    code, out = session(f"{QUESTION}\n:quit\n")
    assert code == 0
    assert WELCOME in out
    assert "Vladivostok" in out
    answer = output_of(out, QUESTION)
    ranks = [int(m.group(1)) for m in _HEADER.finditer(answer)]
    assert ranks == [1, 2, 3, 4, 5]
    assert "**" in answer  # the answering sentence is marked (no colour on a non-terminal)


def test_colour_output_paints_the_sentence_instead_of_starring_it(retriever, tmp_path):
    code, raw = drive(lambda: retriever, f"{QUESTION}\n:quit\n", tmp_path / "history", colour=True, raw=True)
    assert code == 0
    answer = raw[raw.rindex("Vladivostok") - 400:]
    assert "\x1b[" in answer and "**" not in plain(answer)


def test_k_sets_the_number_of_hits(session):
    code, out = session(f":k 2\n{QUESTION}\n:k\n:k zero\n:quit\n")
    assert code == 0
    assert "k = 2" in out
    ranks = [int(m.group(1)) for m in _HEADER.finditer(output_of(out, QUESTION))]
    assert ranks == [1, 2]
    assert "error: :k takes a whole number, not 'zero'" in out


def test_doc_filter_filters_and_clear(session, retriever):
    code, out = session(f":doc 003_*\n:filters\n{QUESTION}\n:clear\n:filters\n:quit\n")
    assert code == 0
    assert output_of(out, ":doc 003_*") == output_of(out, ":filters") == "filters: doc 003_*\n"
    answer = output_of(out, QUESTION)
    docs = [m.group(2) for m in _HEADER.finditer(answer)]
    assert docs and all(d.startswith("003_") for d in docs)
    assert output_of(out, ":clear") == "filters cleared\n"
    assert output_of(out, ":filters", 1) == "filters: none\n"


def test_bad_filter_prints_one_error_line_and_the_session_goes_on(session):
    """A bad date is refused when it is typed (the filter is not set), so the questions after it
    search everything."""
    code, out = session(f":from notadate\n{QUESTION}\n:clear\n{QUESTION}\n:quit\n")
    assert code == 0
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "notadate" in errors[0]
    assert output_of(out, ":from notadate") == errors[0] + "\n"
    assert "Vladivostok" in output_of(out, QUESTION) and "Vladivostok" in output_of(out, QUESTION, 1)


def test_show_and_article(session, retriever):
    from qa.ingest import read_text

    hit = retriever.ask(QUESTION, 5).hits[0]
    document = next(d for d in retriever.index.documents if d.doc_id == hit.doc_id)
    article = read_text(document.path)
    code, out = session(f"{QUESTION}\n:show 1\n:article 1\n:show 1 --article\n:more 9\n:quit\n")
    assert code == 0
    shown = output_of(out, ":show 1")
    assert hit.doc_id in shown and document.path in shown and "source" in shown
    assert f"score {hit.score:.3f}" in shown
    whole = output_of(out, ":article 1")
    first_words = " ".join(article.split()[:6])
    passage_words = " ".join(article[hit.start:hit.end].split()[:4])
    assert first_words in " ".join(whole.split())  # the whole article, from its beginning
    assert "**" + passage_words in " ".join(whole.split())  # the passage highlighted
    again = output_of(out, ":show 1 --article")
    assert "**" + passage_words in " ".join(again.split())
    assert output_of(out, ":more 9") == "error: no hit 9: the last answer has 5\n"


def test_show_before_any_question(session):
    code, out = session(":show 1\n:quit\n")
    assert code == 0
    assert "error: no answer yet" in out


def test_json_toggles(session):
    code, out = session(f":json\n{QUESTION}\n:json\n{QUESTION}\n:quit\n")
    assert code == 0
    assert "JSON output on" in out and "JSON output off" in out
    data = json.loads(output_of(out, QUESTION))
    assert data["question"] == QUESTION
    assert len(data["hits"]) == 5 and any("Vladivostok" in h["text"] for h in data["hits"])
    assert _HEADER.search(output_of(out, QUESTION, 1))  # text again after :json off


def test_stats(session, retriever, corpus_index):
    code, out = session(":stats\n:quit\n")
    assert code == 0
    stats = output_of(out, ":stats")
    assert re.search(rf"passages: {len(retriever.index)}\b", stats)
    assert re.search(rf"documents: {len(retriever.index.documents)}\b", stats)
    assert "model: " in stats and "IndexFlatIP" in stats and str(corpus_index) in stats


def test_reindex_of_an_unchanged_corpus_embeds_nothing(retriever, corpus_index, tmp_path):
    from qa.index import PassageIndex
    from qa.ranking.search import Retriever

    copy = tmp_path / "index"
    shutil.copytree(corpus_index, copy)
    before = PassageIndex.open(copy).generation.name
    factory = lambda: Retriever(PassageIndex.open(copy), retriever.embedder)  # noqa: E731
    code, out = drive(factory, f":reindex\n:stats\n{QUESTION}\n:quit\n", tmp_path / "history")
    assert code == 0
    assert re.search(r"embedded 0 passages in [\d.]+ s \(incremental\)", out)
    after_generation = PassageIndex.open(copy).generation.name
    assert after_generation != before and f"generation: {after_generation}" in out  # the session reopened it
    assert "Vladivostok" in output_of(out, QUESTION)


def test_help_and_unknown_commands(session):
    code, out = session(":help\n:foo\n:hlep\n:quit\n")
    assert code == 0
    for command in (":k", ":doc", ":from", ":to", ":filters", ":clear", ":show", ":article", ":json", ":reindex",
                    ":stats", ":quit"):
        assert f"\n  {command}" in out
    assert "unknown command :foo — type :help" in out
    assert "unknown command :hlep (did you mean :help?) — type :help" in out


# --------------------------------------------------------------------------- keys


def test_ctrl_c_cancels_the_line_and_ctrl_d_leaves(session):
    code, out = session(f"what about\x03{QUESTION}\n\x04")
    assert code == 0
    assert "Vladivostok" in out
    assert "error" not in out  # the cancelled line was never asked


def test_ctrl_d_on_an_empty_line_leaves_with_0(session):
    started = time.perf_counter()
    code, out = session("\x04")
    assert code == 0 and WELCOME in out
    assert time.perf_counter() - started < 10


def test_tab_completes_a_command(session, retriever):
    code, out = session([":sta\t", "\n:quit\n"])  # as a person types: Enter after the completion shows
    assert code == 0
    assert re.search(rf"passages: {len(retriever.index)}\b", out)


def test_history_persists_across_sessions(retriever, tmp_path):
    from prompt_toolkit.history import FileHistory

    history = tmp_path / "state" / "history"
    code, _ = drive(lambda: retriever, f"{QUESTION}\n:quit\n", history)
    assert code == 0
    assert QUESTION in list(FileHistory(str(history)).load_history_strings())
    # Second session: Up, Up recalls the question (the last entry is :quit), Enter asks it again.
    code, out = drive(lambda: retriever, "\x1b[A\x1b[A\r:quit\n", history)
    assert code == 0
    assert "Vladivostok" in out
    assert list(FileHistory(str(history)).load_history_strings()).count(QUESTION) == 2


def test_state_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_STATE_DIR", str(tmp_path / "a"))
    assert default_history_path() == tmp_path / "a" / "history"
    monkeypatch.delenv("QA_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_history_path() == tmp_path / "xdg" / "qa" / "history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_history_path() == tmp_path / "home" / ".local" / "state" / "qa" / "history"


def test_completion_of_commands_and_arguments(retriever, tmp_path):
    output, _ = capture_output()
    repl = Repl(lambda: retriever, output=output, history_path=tmp_path / "history")
    completer = ReplCompleter(repl)

    def complete(text: str) -> list[str]:
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]

    assert complete("where") == []  # questions are not completed
    assert complete(":sh") == [":show"]
    assert set(complete(":")) >= {":help", ":k", ":doc", ":show", ":article", ":json", ":reindex", ":stats", ":quit"}
    assert complete(":json ") == ["on", "off"] and complete(":json o") == ["on", "off"]
    assert complete(":clear ") == ["doc", "from", "to"]
    assert "5" in complete(":k ")
    assert complete(":show ") == []  # no answer yet
    assert repl.handle_line(QUESTION)
    assert complete(":show ") == ["1", "2", "3", "4", "5"]
    assert complete(":show 2 ") == ["--article"]
    ids = [d.doc_id for d in retriever.index.documents]
    assert complete(":doc ") == ids
    assert complete(":doc 003") == [i for i in ids if "003" in i]
    assert all(re.match(r"\d{4}", d) for d in complete(":from "))


# --------------------------------------------------------------------------- loading


def test_a_question_waits_for_the_loading_and_ctrl_c_stops_waiting(retriever, tmp_path):
    release = threading.Event()

    def slow_factory():
        release.wait(30)
        return retriever

    output, buffer = capture_output()
    repl = Repl(slow_factory, output=output, history_path=tmp_path / "history")
    repl.start_loading()
    timer = threading.Timer(0.5, _thread.interrupt_main)  # what Ctrl-C does in a terminal
    timer.start()
    started = time.perf_counter()
    assert repl.handle_line(QUESTION) is True
    assert time.perf_counter() - started < 5
    text = plain(buffer.getvalue())
    assert "loading the model…" in text and "cancelled" in text
    release.set()
    assert repl.handle_line(QUESTION) is True
    text = plain(buffer.getvalue())
    assert "ready: " in text and "Vladivostok" in text


def test_a_load_failure_is_reported_and_the_session_goes_on(tmp_path):
    from qa.ranking.search import Retriever

    missing = tmp_path / "nowhere"
    code, out = drive(lambda: Retriever.open(missing), f"{QUESTION}\n:help\n:quit\n", tmp_path / "history")
    assert code == 0
    assert f"no index at {missing}" in out
    assert "commands:" in out  # :help still answered


def test_ctrl_c_abandons_a_running_search(retriever, tmp_path):
    output, _ = capture_output()
    repl = Repl(lambda: retriever, output=output, history_path=tmp_path / "history")
    threading.Timer(0.3, _thread.interrupt_main).start()
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        repl._interruptible(lambda: time.sleep(10))
    assert time.perf_counter() - started < 3


# --------------------------------------------------------------------------- end to end


def test_end_to_end_in_a_terminal(corpus_index, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    index = tmp_path / "index"
    shutil.copytree(corpus_index, index)
    env = dict(os.environ, QA_STATE_DIR=str(tmp_path / "state"), NO_COLOR="1", TERM="xterm",
               PROMPT_TOOLKIT_NO_CPR="1", PYTHONPATH=str(REPO))
    started = time.perf_counter()
    child = pexpect.spawn(sys.executable, ["-m", "qa", "repl", "--index", str(index)], cwd=str(REPO), env=env,
                          encoding="utf-8", timeout=120, dimensions=(40, 100))
    try:
        child.expect_exact(WELCOME, timeout=30)
        child.expect("qa>", timeout=30)
        prompt_at = time.perf_counter() - started
        child.send(QUESTION + "\r")
        child.expect("Vladivostok")
        answer_at = time.perf_counter() - started
        child.expect("qa>")
        child.send(":k 1\r")
        child.expect("k = 1")
        child.send("\x04")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    print(f"\nqa repl in a terminal: prompt after {prompt_at:.2f} s, first answer after {answer_at:.2f} s")
    assert QUESTION in (tmp_path / "state" / "history").read_text()


# --------------------------------------------------------------------------- fast: the fake embedder


def test_every_command_row_has_a_handler():
    from qa.repl import BY_NAME, COMMANDS

    for command in COMMANDS:
        assert command.method is None or callable(getattr(Repl, command.method)), command
    assert BY_NAME[":q"].name == ":quit" and BY_NAME[":more"].method == BY_NAME[":article"].method


def test_a_session_over_the_fake_embedder(fake_retriever, tmp_path):
    """The session's commands without the model: stats, k, filters, show, JSON."""
    keys = ":stats\n:k 0\n:k 2\n:doc 003_*\nwhere did Kim meet Putin?\n:show 1\n:json on\n:stats\n:quit\n"
    code, out = drive(lambda: fake_retriever, keys, tmp_path / "history")
    assert code == 0
    assert re.search(rf"passages: {len(fake_retriever.index)}\b", output_of(out, ":stats"))
    assert "error: the number of hits must be at least 1 (got 0)" in output_of(out, ":k 0")
    answer = output_of(out, "where did Kim meet Putin?")
    assert [m.group(2)[:4] for m in _HEADER.finditer(answer)] == ["003_", "003_"]
    assert "source:" in output_of(out, ":show 1") or "sources:" in output_of(out, ":show 1")
    assert json.loads(output_of(out, ":stats", 1))["faiss"] == "IndexFlatIP"
