"""No silent loss (issue 25): a damaged live generation is refused, never replaced by an older one
behind the user's back, and rebuilt from its own record; boilerplate removal cuts blocks, never
the rest of a file; duplicates need the same numbers; bad dates, unreadable folders and other
mistakes end in one true line.

Damage is done to copies of real indexes built with the real model; folders are made unreadable
for real (as the unprivileged user `nobody` when the tests run as root, whom permissions do not
stop).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexStoreError, QAError
from qa.index import PassageIndex, build_index, describe, live_generation
from qa.ingest import load_corpus
from qa.ranking import check_date
from qa.ranking.search import Retriever

from .conftest import CORPUS, REPO
from .test_hostile import QUESTION, copy_of, one_error, qa

ARTICLES = sorted(CORPUS.glob("*.txt"))


# --------------------------------------------------------------------------- damaged live generation


@pytest.fixture(scope="module")
def grown_index(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """An index built from one folder, then from that folder and a second one: generation 2 has
    three documents, generation 1 two; losing generation 2 silently would lose a document."""
    root = tmp_path_factory.mktemp("grown")
    first, second = root / "a", root / "b"
    first.mkdir()
    second.mkdir()
    for article in ARTICLES[:2]:
        shutil.copy(article, first)
    shutil.copy(ARTICLES[2], second)
    index_dir = root / "idx"
    build_index([first], index_dir, embedder)
    build_index([first, second], index_dir, embedder)
    assert live_generation(index_dir).name == "g000002"
    return index_dir, root


def _remove(name: str):
    return lambda generation: (generation / name).unlink()


DAMAGE = {
    "manifest missing": (_remove("manifest.json"), "lacks manifest.json"),
    "manifest garbled": (lambda g: (g / "manifest.json").write_text('{"format_version": 3, "mod'),
                         "has an unreadable manifest.json"),
    "passages missing": (_remove("passages.jsonl"), "lacks passages.jsonl"),
    "vectors missing": (_remove("vectors.npy"), "lacks vectors.npy"),
    "token codes missing": (_remove("token_codes.npy"), "lacks token_codes.npy"),
    "faiss missing": (_remove("faiss.index"), "lacks faiss.index"),
    "generation missing": (shutil.rmtree, "is missing"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_live_generation_is_refused_not_replaced(grown_index, tmp_path, kind):
    index_dir = copy_of(grown_index[0], tmp_path)
    damage, what = DAMAGE[kind]
    damage(index_dir / "g000002")
    expected = f"the index at {index_dir} is damaged (its live generation g000002 {what}); repair it with "
    with pytest.raises(IndexStoreError) as opened:
        PassageIndex.open(index_dir)
    assert str(opened.value).startswith(expected)
    with pytest.raises(IndexStoreError) as stats:
        describe(index_dir)
    assert str(stats.value) == str(opened.value)


@pytest.mark.parametrize("kind", ["faiss missing", "manifest garbled"])
def test_the_repair_keeps_what_was_added_since(grown_index, tmp_path, embedder, kind):
    """`qa ask` and `qa stats` exit 1 naming the repair; the repair rebuilds all three documents
    from the live generation's own record, reusing the older generation's vectors."""
    index_dir = copy_of(grown_index[0], tmp_path)
    DAMAGE[kind][0](index_dir / "g000002")
    line = one_error(qa("ask", "--index", str(index_dir), QUESTION))
    assert "live generation g000002" in line and line.endswith(f"repair it with `qa index --index {index_dir}`")
    assert one_error(qa("stats", "--index", str(index_dir))) == line
    report = build_index(None, index_dir, embedder)
    assert report.documents == 3 and report.full and "g000002" in report.reason
    assert any("rebuilt in full; unchanged passages reuse the vectors of g000001" in w for w in report.warnings)
    assert report.embedded < report.passages  # the older generation's vectors were reused
    assert len(PassageIndex.open(index_dir).documents) == 3


def test_a_missing_live_generation_is_rebuilt_from_an_older_record_with_a_warning(grown_index, tmp_path, embedder):
    index_dir = copy_of(grown_index[0], tmp_path)
    shutil.rmtree(index_dir / "g000002")
    report = build_index(None, index_dir, embedder)
    assert report.warnings[0] == ("the live generation g000002 is gone with its record of its sources; rebuilt "
                                  "from the 1 sources g000001 recorded: name PATH if sources were added since")


def test_a_lost_pointer_is_said_on_every_command(grown_index, tmp_path):
    index_dir = copy_of(grown_index[0], tmp_path)
    (index_dir / "CURRENT").unlink()
    asked = qa("ask", "--index", str(index_dir), "-k", "1", QUESTION)
    assert asked.returncode == 0 and "Vladivostok" in asked.stdout
    assert asked.stderr.strip() == "qa: warning: CURRENT is missing; using g000002, the newest complete generation"


def test_stats_refuses_a_truncated_faiss_file_as_ask_does(grown_index, tmp_path):
    index_dir = copy_of(grown_index[0], tmp_path)
    faiss_file = index_dir / "g000002" / "faiss.index"
    faiss_file.write_bytes(faiss_file.read_bytes()[:4096])
    line = one_error(qa("stats", "--index", str(index_dir)))
    assert "faiss.index is truncated" in line and "repair it with" in line


def test_token_scales_out_of_range_are_damage_then_repaired(grown_index, tmp_path, embedder):
    """A finite but impossible scale (3e38) would score `inf`: it is damage, and re-embedded."""
    index_dir = copy_of(grown_index[0], tmp_path)
    codes_file = live_generation(index_dir) / "token_codes.npy"
    codes = np.load(codes_file)
    codes[5, -4:] = np.array([3e38], np.float32).view(np.uint8)
    np.save(codes_file, codes)
    with pytest.raises(IndexStoreError, match="1 passages have vectors that are not finite unit vectors"):
        PassageIndex.open(index_dir)
    report = build_index(None, index_dir, embedder)
    assert report.embedded == 1
    assert Retriever(PassageIndex.open(index_dir), embedder).search(QUESTION, k=1)[0].score < 100


def test_another_copy_of_the_same_model_is_named_as_such(grown_index, tmp_path):
    index_dir = copy_of(grown_index[0], tmp_path)
    manifest_file = live_generation(index_dir) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["model_fingerprint"] = "0123456789abcdef"
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(QAError) as raised:
        Retriever.open(index_dir)
    message = str(raised.value)
    assert "built with another copy of" in message and "(weights 0123456789abcdef;" in message
    assert message.endswith(f"rebuild it with `qa index --full --index {index_dir}`, or pass its --model")


# --------------------------------------------------------------------------- boilerplate and duplicates


def test_concatenated_articles_lose_nothing(tmp_path):
    """The five articles in one file (comment forms between them) give the passages they give apart."""
    joined = tmp_path / "all.txt"
    joined.write_text("".join(a.read_text(encoding="utf-8") + "\n\n" for a in ARTICLES), encoding="utf-8")
    apart = load_corpus(CORPUS)
    together = load_corpus(joined)
    assert len(apart.passages) == 53
    assert len(together.passages) == len(apart.passages)


def test_a_comment_form_in_the_middle_cuts_only_itself(tmp_path):
    first = ("Le sommet s'est tenu à Vladivostok, dans l'Extrême-Orient russe, au terme d'un long voyage en "
             "train blindé depuis Pyongyang.")
    second = ("Les pêcheurs bretons ont débarqué une prise record de thon rouge au port de Douarnenez, selon "
              "la criée, qui parle d'une saison exceptionnelle.")
    form = ["Laisser un commentaire", "Votre adresse e-mail ne sera pas publiée. Les champs obligatoires sont "
            "indiqués avec *", "Commentaire *", "Nom *", "E-mail *", "Site web",
            "Enregistrer mon nom, mon e-mail et mon site dans le navigateur pour mon prochain commentaire."]
    article = tmp_path / "page.txt"
    article.write_text("\n\n".join(["Kim à Vladivostok", first, *form, "Record de thon en Bretagne", second]))
    passages = load_corpus(article).passages
    assert [p.text for p in passages] == [first, second]
    assert passages[1].context == "Record de thon en Bretagne"  # the next article's title came back to it


def test_bulletins_that_differ_by_a_number_stay_apart(tmp_path):
    template = ("Le bilan du séisme qui a frappé la région de Sulawesi s'élève désormais à {n} morts et plusieurs "
                "centaines de blessés, selon les autorités locales citées par l'agence officielle.")
    for name, n in (("a.txt", 12), ("b.txt", 14), ("c.txt", 12)):
        (tmp_path / name).write_text(template.format(n=n))
    passages = load_corpus(tmp_path).passages
    assert sorted(p.text.split(" morts")[0][-2:] for p in passages) == ["12", "14"]
    twelve = next(p for p in passages if " 12 morts" in p.text)
    assert [s.doc_id for s in twelve.sources()] == ["a.txt", "c.txt"]  # the same figure still merges


# --------------------------------------------------------------------------- dates and other mistakes


@pytest.mark.parametrize("value, problem", [("2020-13", "no such month"), ("2020-02-30", "no such day"),
                                            ("2021-02-29", "no such day"), ("2020-1", "use YYYY"),
                                            ("0000", "no such year"), ("soon", "use YYYY")])
def test_impossible_dates_are_refused(value, problem):
    with pytest.raises(QAError, match=problem):
        check_date(value)


def test_real_dates_are_accepted():
    assert [check_date(v) for v in ("2019", "2019-04", "2020-02-29")] == ["2019", "2019-04", "2020-02-29"]


def test_bad_dates_on_every_surface(fake_retriever):
    with pytest.raises(QAError, match="no such month"):
        fake_retriever.search("Kim", date_from="2020-13")
    line = one_error(qa("ask", "--from", "2020-02-30", QUESTION))
    assert line == "qa: error: bad date '2020-02-30': no such day (use YYYY, YYYY-MM or YYYY-MM-DD)"


def test_repl_refuses_a_bad_date_and_keeps_the_filter(fake_retriever, tmp_path):
    """Typed in the real session (prompt_toolkit's pipe input): the bad date is refused in one
    line and the filter set before it stays."""
    from .test_repl import drive, output_of

    code, out = drive(lambda: fake_retriever, ":from 2019-04\n:from 2020-13\n:filters\n:quit\n", tmp_path / "history")
    assert code == 0
    assert "bad date '2020-13': no such month" in output_of(out, ":from 2020-13")
    assert "2019-04" in output_of(out, ":filters")


def _as_nobody(args: list[str]) -> list[str]:
    """Run `args` as the unprivileged user when root (whom file permissions do not stop)."""
    if os.geteuid() != 0:
        return args
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]


@pytest.fixture
def shared_tmp():
    """A folder the unprivileged user can reach (pytest's own tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="qa-perm-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        path.chmod(0o755) if path.is_dir() else None
    shutil.rmtree(folder)


def _load(folder: Path) -> subprocess.CompletedProcess:
    script = ("import sys; from qa.ingest import load_corpus; from qa.errors import QAError\n"
              "try:\n c = load_corpus(sys.argv[1]); print(len(c.documents)); print(*c.warnings, sep='\\n')\n"
              "except QAError as e:\n print('error:', e)")
    return subprocess.run(_as_nobody([sys.executable, "-c", script, str(folder)]), capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_an_unreadable_sub_folder_is_one_warning(shared_tmp):
    articles = shared_tmp / "articles"
    (articles / "locked").mkdir(parents=True)
    shutil.copy(ARTICLES[0], articles)
    shutil.copy(ARTICLES[1], articles / "locked")
    for path in (articles, *articles.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (articles / "locked").chmod(0o000)
    out = _load(articles).stdout.splitlines()
    assert out == ["1", f"skipped the folder {articles / 'locked'}: Permission denied (its articles are not indexed)"]


def test_an_unreadable_root_is_not_called_empty(shared_tmp):
    articles = shared_tmp / "articles"
    articles.mkdir()
    shutil.copy(ARTICLES[0], articles)
    articles.chmod(0o000)
    assert _load(articles).stdout.strip() == f"error: cannot read the folder {articles}: Permission denied"


def test_options_without_a_command_open_the_session(tmp_path):
    """`qa --index DIR` is `qa repl --index DIR`, not an invalid command."""
    missing = tmp_path / "none"
    assert one_error(qa("--index", str(missing))) == one_error(qa("repl", "--index", str(missing)))
    assert one_error(qa("--index", str(missing))).startswith(f"qa: error: no index at {missing}")


def test_eval_limit_must_be_positive(tmp_path):
    line = one_error(qa("eval", "--limit", "-1", str(REPO.parent / "shared" / "datasets" / "tatoeba_en-fr")))
    assert line == "qa: error: --limit must be at least 1 (got -1)"


def test_a_port_that_is_not_a_number(tmp_path):
    line = one_error(qa("stats", "--store", "http://localhost:abc"))
    assert line == ("qa: error: --store http://localhost:abc: the port must be a number from 1 to 65535, e.g. "
                    "http://localhost:19530")


def test_a_name_too_long_for_the_file_system(tmp_path):
    target = tmp_path / ("a" * 300)
    line = one_error(qa("index", str(CORPUS), "-q", "--index", str(target)))
    assert line == f"qa: error: File name too long: {target}"


def _marked(owner: int) -> dict[int, str]:
    """Processes started by the local Ray of process `owner` (they inherit its reaper's mark),
    with their names."""
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"QA_RAY_OWNER={owner}-".encode() in environ.read_bytes():
                found[int(environ.parent.name)] = (environ.parent / "comm").read_text().strip()
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_a_killed_ray_build_leaves_no_ray_processes(tmp_path):
    """kill -9 of `qa index --ray` while its local Ray runs: every process of that Ray, the workers
    that renamed themselves included, is gone soon after (Ray's own clean-up never runs)."""
    build = subprocess.Popen([sys.executable, "-m", "qa", "index", str(CORPUS), "--index", str(tmp_path / "idx"),
                              "--ray", "-q"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while (not any(name.startswith("ray::") for name in _marked(build.pid).values())
               and build.poll() is None and time.monotonic() < deadline):
            time.sleep(0.2)
        running = _marked(build.pid)
        assert any(name.startswith("ray::") for name in running.values()), running
        assert {"raylet", "gcs_server"} <= set(running.values()), running
    finally:
        build.kill()
        build.wait()
    deadline = time.monotonic() + 30
    while _marked(build.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _marked(build.pid) == {}


def test_the_mark_stays_out_of_other_children(fake_embedder):
    """The mark goes to the local Ray alone: a program that started one and then starts other
    processes does not hand them to the reaper."""
    from qa.engines.distributed import REAPER_MARK, _environment

    with _environment({REAPER_MARK: "x-1", "SPT_NOENV": "1"}):
        assert os.environ[REAPER_MARK] == "x-1"
    assert REAPER_MARK not in os.environ and "SPT_NOENV" not in os.environ
