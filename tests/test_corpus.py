"""Ingestion: files and folders of articles to passages (no model needed, all fast)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.ingest import Corpus, Passage, Source, load_corpus, normalise, read_text
from qa.errors import QAError

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"
FIXTURES = HERE / "fixtures" / "corpus"
DOC_001 = "001_707d7b5693acaa4b.txt"
DOC_002 = "002_0e50d99b2ec6cfb3.txt"
DOC_003 = "003_f371d312f86c9442.txt"
DOC_004 = "004_439350766ee36b46.txt"
BOILERPLATE = re.compile(r"publicit|commentaire|adresse e-mail|champs obligatoires", re.I)
HEADINGS = {
    "Trump et Kim, deux rencontres soldées par un double échec": "Pour rappel Donald Trump",
    "Moscou, en médiateur ?": "Aujourd’hui, les tensions",
    "Pompeo assure qu'il pourrait bientôt rendre visite à Kim": "M. Mike Pompeo a également",
    "Problème d'interlocuteur": "Kim Jong-un a assisté mercredi",
    'Vers une "dénucléarisation totale et vérifiable" de la Corée du Nord?': "On ignore comment",
    "Et les États-Unis?": "Un représentant du département",
}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


def by_start(corpus: Corpus, prefix: str) -> Passage:
    found = [p for p in corpus.passages if p.text.startswith(prefix)]
    assert len(found) == 1, (prefix, [p.text[:40] for p in found])
    return found[0]


def collapse(text: str) -> str:
    return " ".join(text.split())


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the default corpus


def test_default_corpus_has_no_boilerplate_passage(corpus):
    assert corpus.warnings == []
    assert len(corpus.documents) == 5
    for passage in corpus.passages:
        assert not BOILERPLATE.search(passage.text), passage.text
        assert not BOILERPLATE.search(passage.context or ""), passage.context


def test_date_marker_is_parsed_and_removed(corpus):
    doc = next(d for d in corpus.documents if d.doc_id == DOC_003)
    assert doc.date == "2019-04"
    first = next(p for p in corpus.passages if p.doc_id == DOC_003 and p.paragraph == 1)
    assert first.text.startswith("Le dirigeant nord-coréen Kim Jong-un se rendra")
    assert first.date == "2019-04"
    assert all("date 2019" not in p.text for p in corpus.passages)


def test_headings_are_context_not_passages(corpus):
    texts = {p.text for p in corpus.passages}
    for heading, following in HEADINGS.items():
        assert heading not in texts
        assert by_start(corpus, following).context == heading


def test_title_of_001(corpus):
    title = "Corée du Nord : l’administration Trump appelle Poutine à une coopération"
    doc = next(d for d in corpus.documents if d.doc_id == DOC_001)
    assert doc.title == title
    first = by_start(corpus, "Il y a quelques jours, le chef")
    assert (first.title, first.context, first.paragraph) == (title, title, 1)
    # a heading later in a document is not its title
    assert next(d for d in corpus.documents if d.doc_id == DOC_003).title is None


def test_short_paragraph_ending_with_a_period_is_a_passage(corpus):
    passage = by_start(corpus, "Mais Mike Pompeo insiste")
    assert passage.text == "Mais Mike Pompeo insiste, M. Kim est sérieux."
    assert passage.context is None


def test_shared_paragraphs_are_merged_with_both_sources(corpus):
    shared = [p for p in corpus.passages if len({s.doc_id for s in p.sources()}) > 1]
    assert len(shared) == 3
    for prefix in ("Kim Jong-un, arrivé au pouvoir", "Les États-Unis cherchent à obtenir",
                   "Kim Jong-un a assisté mercredi"):
        passage = by_start(corpus, prefix)
        assert [s.doc_id for s in passage.sources()][0] == DOC_003
        assert DOC_004 in {s.doc_id for s in passage.sources()}
    # 003's paragraph covers two paragraphs of 004, both recorded as sources
    assert [s.paragraph for s in by_start(corpus, "Kim Jong-un, arrivé").other_sources] == [11, 12]
    assert not any(p.text.startswith("Il a tenu deux sommets") for p in corpus.passages)
    assert sum(len(p.sources()) for p in corpus.passages) == 57  # every paragraph is somewhere


def test_offsets_reproduce_the_raw_text(corpus):
    texts = {d.doc_id: read_text(d.path) for d in corpus.documents}
    for passage in corpus.passages:
        assert collapse(texts[passage.doc_id][passage.start:passage.end]) == passage.text
        for source in passage.other_sources:
            raw = texts[source.doc_id][source.start:source.end]
            assert raw == raw.strip() and "\n\n" not in raw and len(raw.split()) > 5


def test_paragraph_numbers_skip_headings_and_boilerplate(corpus):
    numbers = [p.paragraph for p in corpus.passages if p.doc_id == DOC_001]
    assert numbers == [1, 2, 3, 4]
    assert by_start(corpus, "M. Mike Pompeo a également").paragraph == 8


def test_ids_are_stable_and_unique(corpus):
    again = load_corpus(str(CORPUS))
    assert [p.id for p in again.passages] == [p.id for p in corpus.passages]
    assert len({p.id for p in corpus.passages}) == len(corpus.passages)
    assert all(re.fullmatch(r"[0-9a-f]{16}", p.id) for p in corpus.passages)
    assert [d.sha256 for d in again.documents] == [d.sha256 for d in corpus.documents]


def test_documents_in_sorted_order_with_passage_counts(corpus):
    assert [d.doc_id for d in corpus.documents] == sorted(p.name for p in CORPUS.glob("*.txt"))
    assert all(d.n_passages > 0 for d in corpus.documents)
    assert all(Path(d.path).is_file() for d in corpus.documents)


def test_passage_methods():
    p = Passage(id="x", text="Le texte.", context="Titre", doc_id="a.txt", paragraph=1, start=0, end=9,
                other_sources=[Source(doc_id="b.txt", paragraph=2, start=3, end=12)])
    assert p.embed_text() == "Titre\nLe texte."
    assert len(p.content_hash()) == 64
    assert p.content_hash() != p.model_copy(update={"context": None}).content_hash()
    assert [s.doc_id for s in p.sources()] == ["a.txt", "b.txt"]
    assert Passage(id="y", text="T", doc_id="a", paragraph=1, start=0, end=1).embed_text() == "T"


# --------------------------------------------------------------------------- fixtures and edge cases


def test_fixture_folder_walk_boilerplate_and_markdown():
    corpus = load_corpus(FIXTURES)
    assert [d.doc_id for d in corpus.documents] == ["guide.md", "sub/note.txt", "web/blog.txt", "web/news.txt"]
    assert corpus.warnings == []  # data.csv is ignored silently, hidden files are not read
    texts = " ".join(p.text + " " + (p.context or "") for p in corpus.passages)
    for clutter in ("Advertisement", "Share this", "Twitter", "Read more", "All rights reserved",
                    "Leave a Reply", "email address", "Jane Doe", "waste of public money", "cookies",
                    "Subscribe", "Sign in", "Menu", "caché", "id,name"):
        assert clutter not in texts
    blog = [p for p in corpus.passages if p.doc_id == "web/blog.txt"]
    assert [p.context for p in blog] == ["City council approves the new tram line", "Construction costs", None]
    guide = {d.doc_id: d for d in corpus.documents}["guide.md"]
    assert (guide.title, guide.date) == ("Guide du tramway", "2024-03-05")
    md = [p for p in corpus.passages if p.doc_id == "guide.md"]
    assert [p.context for p in md] == ["Le tramway de la ville", "Horaires", "Tarifs"]
    assert all("#" not in p.text and "---" not in p.text for p in md)
    raw = read_text(FIXTURES / "guide.md")
    assert all(collapse(raw[p.start:p.end]) == p.text for p in md)


def test_markdown_heading_without_front_matter(tmp_path):
    write(tmp_path, "a.md", "# Le titre #\n\nUn paragraphe.\n\n### Suite\nLe texte qui suit le titre.\n")
    corpus = load_corpus(tmp_path)
    assert corpus.documents[0].title == "Le titre"
    assert [(p.context, p.text) for p in corpus.passages] == [
        ("Le titre", "Un paragraphe."), ("Suite", "Le texte qui suit le titre.")]


def test_long_paragraph_split_into_windows(tmp_path):
    sentences = [f"Phrase numéro {i} qui compte exactement huit mots." for i in range(12)]
    long_sentence = " ".join(f"mot{i}" for i in range(45)) + "."
    paragraph = " ".join(sentences[:6]) + "\n" + long_sentence + " " + " ".join(sentences[6:])
    write(tmp_path, "long.txt", f"Un titre court\n\n{paragraph}\n\nFin du texte.\n")
    words = lambda text: len(text.split())  # noqa: E731
    corpus = load_corpus(tmp_path, count_tokens=words, max_tokens=20)
    windows = [p for p in corpus.passages if p.paragraph == 1]
    assert len(windows) > 4
    assert all(words(p.embed_text()) <= 20 for p in windows)
    assert all(p.context == "Un titre court" for p in windows)
    assert " ".join(p.text for p in windows) == collapse(paragraph)
    raw = read_text(tmp_path / "long.txt")
    assert all(collapse(raw[p.start:p.end]) == p.text for p in windows)
    # whole sentences are kept together when they fit
    assert any(p.text == sentences[0] + " " + sentences[1] for p in windows)
    assert corpus.passages[-1].text == "Fin du texte." and corpus.passages[-1].paragraph == 2


def test_single_overlong_word_is_split_not_truncated(tmp_path):
    word = "".join(f"{i:03d}" for i in range(34))  # no two pieces alike, so none are merged
    write(tmp_path, "a.txt", f"Début {word} fin.\n")
    corpus = load_corpus(tmp_path, max_tokens=10)  # default estimate: len // 3 + 1
    assert "".join(p.text.replace(" ", "") for p in corpus.passages) == f"Début{word}fin."
    assert all(len(p.embed_text()) // 3 + 1 <= 10 for p in corpus.passages)


def test_default_budget_fits_real_articles(corpus):
    assert all(len(p.embed_text()) // 3 + 1 <= 500 for p in corpus.passages)


def test_latin1_file_is_decoded(tmp_path):
    text = "Le président a été élu à Noël, déjà réélu.\n\nUne deuxième phrase, très courte.\n"
    write(tmp_path, "latin.txt", text.encode("latin-1"))
    corpus = load_corpus(tmp_path)
    assert corpus.passages[0].text == "Le président a été élu à Noël, déjà réélu."
    assert any("latin.txt" in w and "not UTF-8" in w for w in corpus.warnings)
    assert read_text(tmp_path / "latin.txt") == text


def test_crlf_and_bom_are_normalised(tmp_path):
    write(tmp_path, "win.txt", "\ufeffPremière ligne\r\nsuite du paragraphe.\r\n\r\nSecond paragraphe.\r\n".encode())
    corpus = load_corpus(tmp_path)
    assert [p.text for p in corpus.passages] == ["Première ligne suite du paragraphe.", "Second paragraphe."]
    raw = read_text(tmp_path / "win.txt")
    assert "\r" not in raw and raw[corpus.passages[0].start:corpus.passages[0].end].startswith("Première")


def test_bad_files_are_skipped_with_warnings(tmp_path):
    write(tmp_path, "good.txt", "Un vrai paragraphe qui se lit bien.\n")
    write(tmp_path, "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path, "empty.txt", "")
    write(tmp_path, "blank.md", "  \n\n\t\n")
    write(tmp_path, "garbage.txt", bytes(range(128, 256)) * 3)
    corpus = load_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["good.txt"]
    assert len(corpus.passages) == 1
    warnings = "\n".join(corpus.warnings)
    assert re.search(r"binary\.txt: binary file", warnings)
    assert re.search(r"empty\.txt: empty file", warnings)
    assert re.search(r"blank\.md: empty file", warnings)
    assert re.search(r"garbage\.txt: .*encoding", warnings)
    assert all("\n" not in w for w in corpus.warnings)
    with pytest.raises(QAError, match="binary"):
        read_text(tmp_path / "binary.txt")


def test_missing_path_raises(tmp_path):
    with pytest.raises(QAError, match="no such file or folder: .*nope"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(QAError, match="no such file or folder"):
        read_text(tmp_path / "nope.txt")


def test_folder_without_articles_raises(tmp_path):
    write(tmp_path, "data.csv", "a,b\n")
    write(tmp_path, ".hidden.txt", "Un texte caché.\n")
    with pytest.raises(QAError, match=r"no documents \(\.txt, \.md, \.html, .*\) in folder"):
        load_corpus(tmp_path)


def test_explicit_files(tmp_path):
    a = write(tmp_path, "x/a.txt", "Premier document, un paragraphe complet.\n")
    b = write(tmp_path, "y/a.txt", "Second document, un autre paragraphe.\n")
    csv = write(tmp_path, "doc.csv", "a,b\n")
    corpus = load_corpus([a, b, csv, a])
    assert [d.doc_id for d in corpus.documents] == ["a.txt", "y/a.txt"]  # ids stay unique
    assert corpus.warnings == [f"skipped {csv}: not a document qa reads (.txt, .md, .html, .htm, .xhtml, .pdf, "
                               ".docx, .epub, .odt)"]


def test_near_duplicate_contained_in_a_later_longer_paragraph(tmp_path):
    short = ("Le maire a annoncé mardi la fermeture de la piscine municipale pour des travaux de "
             "rénovation qui dureront au moins six mois.")
    write(tmp_path, "a.txt", f"{short}\n\nUn paragraphe sans rapport avec le reste, sur la météo.\n")
    write(tmp_path, "b.txt", f"{short} Les nageurs devront se rendre à la piscine de la commune voisine, "
                             "a-t-il précisé lors du conseil.\n")
    corpus = load_corpus(tmp_path)
    merged = [p for p in corpus.passages if len(p.sources()) > 1]
    assert len(merged) == 1 and merged[0].doc_id == "b.txt"  # the longer text is kept whole
    assert [s.doc_id for s in merged[0].sources()] == ["b.txt", "a.txt"]
    assert len(corpus.passages) == 2


def test_exact_duplicate_files_merge_without_losing_headings(tmp_path):
    article = "Un titre\n\nLe premier paragraphe de l'article, assez long pour compter.\n"
    write(tmp_path, "a.txt", article)
    write(tmp_path, "b.txt", article)
    corpus = load_corpus(tmp_path)
    assert len(corpus.passages) == 1
    assert corpus.passages[0].context == "Un titre"
    assert [s.doc_id for s in corpus.passages[0].sources()] == ["a.txt", "b.txt"]
    assert [d.n_passages for d in corpus.documents] == [1, 1]


def test_repeated_short_lines_are_boilerplate(tmp_path):
    write(tmp_path, "a.txt", "Retrouvez-nous en ligne\n\nPremier article, avec un vrai paragraphe.\n")
    write(tmp_path, "b.txt", "Retrouvez-nous en ligne\n\nSecond article, sur un tout autre sujet.\n")
    corpus = load_corpus(tmp_path)
    assert all(p.context is None for p in corpus.passages)
    assert all(d.title is None for d in corpus.documents)


def test_comment_marker_before_the_article_does_not_drop_it(tmp_path):
    write(tmp_path, "a.txt", "Laisser un commentaire\n\nLe vrai article commence ici.\n\nEt continue là.\n"
                             "\n\nLaisser un commentaire\n\nBravo pour cet article.\n")
    corpus = load_corpus(tmp_path)
    assert [p.text for p in corpus.passages] == ["Le vrai article commence ici.", "Et continue là."]


def test_document_of_short_lines_keeps_them(tmp_path):
    write(tmp_path, "a.txt", "Réunion jeudi\n")
    assert [p.text for p in load_corpus(tmp_path).passages] == ["Réunion jeudi"]


def test_normalise_folds_case_accents_and_punctuation():
    assert normalise("« L’Été, déjà ! »") == "l ete deja"


def test_similarity_join_finds_every_pair_brute_force_finds():
    import random

    from qa.ingest.dedup import CONTAINMENT_MIN, CONTAINMENT_MIN_SHINGLES, JACCARD_MIN, _shingles, _similar_pairs

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(40)] + ["de", "la", "le"] * 10  # common words: shared shingles
    texts = []
    for _ in range(150):
        if texts and rng.random() < 0.5:  # a variant: words changed, cut, or extended
            words = rng.choice(texts).split()
            for _ in range(rng.randint(0, 3)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            cut = rng.randint(0, len(words) // 2)
            words = words[cut:] if rng.random() < 0.3 else words + [rng.choice(vocab) for _ in range(cut)]
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(1, 40))]
        texts.append(" ".join(words))
    shingles = {i: _shingles(t) for i, t in enumerate(texts)}
    expected = set()
    for b in shingles:
        for a in range(b):
            x, y = shingles[a], shingles[b]
            shared = len(x & y)
            smaller = min(len(x), len(y))
            if shared / len(x | y) >= JACCARD_MIN or (
                    smaller >= CONTAINMENT_MIN_SHINGLES and shared / smaller >= CONTAINMENT_MIN):
                expected.add((a, b))
    found = {(a, b) for b, pairs in _similar_pairs(shingles).items() for a, _, _ in pairs}
    assert len(expected) > 30 and found == expected


def test_splitting_reports_progress_through_one_long_paragraph(tmp_path):
    """A paragraph of ~300 KB with no newline is windowed; the progress reports move forward
    within it (a bar that moves), never back, and end at the whole text."""
    words = [f"mot{i}" for i in range(40_000)]  # no two windows alike (they would merge)
    text = ". ".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "."
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    reports: list[tuple[int, int]] = []
    corpus = load_corpus([tmp_path], progress=lambda done, total: reports.append((done, total)))
    assert len(corpus.passages) > 50
    done = [d for d, _ in reports]
    assert done == sorted(done) and len(set(done)) > 50
    assert {t for _, t in reports} == {len(text)} and done[-1] == len(text)
