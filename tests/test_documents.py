"""Documents other than text, read from real files (tests/fixtures/documents/README.md says
where each comes from): HTML pages, PDFs, DOCX, ODT and EPUB files, and the bad ones (scanned,
encrypted, damaged, oversized), which end in one warning line each while the rest is read."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from qa.ingest import load_corpus, read_text
from qa.ingest import extraction
from qa.text import normalise

HERE = Path(__file__).resolve().parent
DOCS = HERE / "fixtures" / "documents"
REPO = HERE.parent
CORPUS = REPO / "corpus"
REPORT = runpy.run_path(str(DOCS / "sources" / "report.py"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty extraction cache of its own."""
    monkeypatch.setattr(extraction, "cache_dir", lambda: tmp_path / "cache")


def texts(corpus) -> list[str]:
    return [p.text for p in corpus.passages]


def report_paragraphs() -> list[str]:
    return [p for _, paragraphs in REPORT["SECTIONS"] for p in paragraphs]


# --------------------------------------------------------------------------- HTML


def test_news_pages_give_the_passages_of_their_txt_copies():
    pages, txts = load_corpus(DOCS / "news"), load_corpus(CORPUS)
    assert pages.warnings == []
    for (page, from_html), (txt, from_txt) in zip(pages.by_document(), txts.by_document()):
        assert Path(page.doc_id).stem == Path(txt.doc_id).stem
        assert [p.text for _, p in from_html] == [p.text for _, p in from_txt]
        assert page.url == f"https://www.courrier-est.example/monde/asie/{Path(page.doc_id).stem}.html"
        assert page.author == "Service Monde"
    dates = {Path(d.doc_id).stem[:3]: d.date for d in pages.documents}
    assert dates["003"] == "2019-04-11" and dates["000"] == "2019-05-16"  # article:published_time / JSON-LD
    every = " ".join(texts(pages))
    for furniture in ("Publicité", "Laisser un commentaire", "Encore un sommet pour rien", "Les plus lus",
                      "cookies", "Tous droits réservés", "Carburants", "newsletter", "À lire aussi"):
        assert furniture not in every, furniture


def test_a_real_french_news_page_keeps_the_article_and_its_metadata():
    """bondyblog.fr, with trafilatura's own evaluation snippets: text that must be in the
    extraction and page furniture that must not."""
    corpus = load_corpus(DOCS / "web" / "bondyblog.fr.paris-8.html")
    document = corpus.documents[0]
    assert (document.author, document.date) == ("Kab Niang", "2020-02-17")
    assert document.url == "https://www.bondyblog.fr/societe/a-paris-8-un-peu-de-tension-beaucoup-d-actions/"
    assert document.title.startswith("A Paris-8, un peu de tension, beaucoup d")
    every = " ".join(f"{p.context or ''} {p.text}" for p in corpus.passages)
    for wanted in ("Une grève reconductible à partir du 5 mars", "Marie-Pierre ne fait plus de cours",
                   "Solidaires Étudiant-e-s Saint-Denis", "Paris 8 en grève reconctible"):
        assert wanted in every, wanted
    for unwanted in ("Candidatures ouvertes pour le Prix", "Intervenant à l’atelier", "Le piquet de grève dans le hall"):
        assert unwanted not in every, unwanted
    section = {p.section for p in corpus.passages if "Marie-Pierre ne fait plus de cours" in p.text}
    assert section and None not in section  # headings of the page are sections of its passages


@pytest.mark.parametrize("name", ["web/ctpost.com-la-auto-show.html", "report.pdf", "report.docx", "report.odt",
                                  "guide.epub"])
def test_passage_offsets_point_into_the_extracted_text(name):
    """What the REPL's :article shows and highlights: read_text is the extracted text."""
    path = DOCS / name
    corpus = load_corpus(path)
    text = read_text(path)
    assert corpus.passages and all(text[p.start:p.end] == p.text for p in corpus.passages)


# --------------------------------------------------------------------------- PDF


def test_pdf_paragraphs_pages_and_no_running_headers():
    corpus = load_corpus(DOCS / "report.pdf")
    assert corpus.warnings == []
    found = texts(corpus)
    # every paragraph LibreOffice laid out comes back whole, once, in order, lines joined
    positions = [next(i for i, t in enumerate(found) if normalise(p) == normalise(t)) for p in report_paragraphs()]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    pages = [p.page for p in corpus.passages]
    assert pages[0] == 1 and pages[-1] == 3 and pages == sorted(pages)
    every = " ".join(found)
    assert REPORT["HEADER"] not in every and "Page 2" not in every
    assert {p.section for p in corpus.passages} >= {"Le réseau en bref", "Perspectives"}
    rows = [t for t in found if " | " in t]  # the table's rows, by the wide gaps between its cells
    assert rows[:3] == ["Indicateur | 2022 | 2023", "Visiteurs | 745 000 | 812 000",
                        "Prêts de documents | 1 080 000 | 1 200 000"]
    prose = {normalise(p) for p in report_paragraphs()}
    assert not any(" | " in t for t in found if normalise(t) in prose)  # justified prose is no table
    assert corpus.documents[0].title == REPORT["TITLE"] and corpus.documents[0].author == REPORT["AUTHOR"]


def test_two_column_pdf_reads_column_by_column_and_undoes_hyphenation():
    corpus = load_corpus(DOCS / "multicolumn.pdf")
    found = texts(corpus)
    starts = ["Lorem ipsum dolor sit amet", "Nam dui ligula", "Nulla malesuada porttitor", "Quisque ullamcorper",
              "Fusce mauris", "Sed commodo posuere", "Pellentesque habitant", "Morbi luctus", "Suspendisse vitae"]
    assert [next(i for i, t in enumerate(found) if t.startswith(s)) for s in starts] == sorted(
        next(i for i, t in enumerate(found) if t.startswith(s)) for s in starts)
    every = " ".join(found)
    assert "adipiscing elit" in every and "adip iscing" not in every and "\ufffe" not in every and "\x02" not in every
    # the lipsum paragraph 5 runs from the right column of page 1 onto page 2 and stays one passage
    fusce = next(p for p in corpus.passages if p.text.startswith("Fusce mauris"))
    assert fusce.page == 1 and fusce.text.endswith("egestas vel, odio.")
    assert not any(t.strip() in {"1", "2", "3"} for t in found)  # page numbers dropped
    assert "Austria | 8.9 | 83,879 | Vienna | German" in found  # the booktabs table, a row a block
    assert not any(" | " in t for t in found if t.startswith(tuple(starts)))  # justified prose is no table


def test_a_paragraph_across_four_pages_is_one_passage_on_its_first_page():
    corpus = load_corpus(DOCS / "pdflatex-4-pages.pdf")
    assert len({p.paragraph for p in corpus.passages}) == 1
    assert corpus.passages[0].page == 1 and "original language" in " ".join(texts(corpus))


# --------------------------------------------------------------------------- DOCX, ODT, EPUB


def test_docx_headings_are_sections_and_tables_are_rows():
    corpus = load_corpus(DOCS / "report.docx")
    document = corpus.documents[0]
    assert (document.title, document.author, document.date) == (REPORT["TITLE"], REPORT["AUTHOR"], "2024-02-15")
    assert [normalise(t) for t in texts(corpus) if " | " not in t] == [normalise(p) for p in report_paragraphs()]
    rows = [p for p in corpus.passages if " | " in p.text]
    assert [r.text for r in rows][:2] == ["Indicateur | 2022 | 2023", "Visiteurs | 745 000 | 812 000"] or \
        "Visiteurs | 745 000 | 812 000" in " ".join(r.text for r in rows)
    first = corpus.passages[0]
    assert first.section == "Le réseau en bref" and first.context.endswith("Le réseau en bref")
    later = next(p for p in corpus.passages if p.text.startswith("Le personnel du réseau"))
    assert later.section == "Le réseau en bref" and later.context is None


def test_odt_reads_as_its_docx():
    odt, docx = load_corpus(DOCS / "report.odt"), load_corpus(DOCS / "report.docx")
    assert texts(odt) == texts(docx)
    assert [p.section for p in odt.passages] == [p.section for p in docx.passages]
    assert odt.documents[0].date == "2024-02-15"


def test_epub_chapters_in_order_with_the_book_metadata():
    corpus = load_corpus(DOCS / "guide.epub")
    document = corpus.documents[0]
    assert (document.title, document.author, document.date) == ("A Field Guide to Urban Beekeeping",
                                                                  "Marion Keller", "2022-06-01")
    assert [p.section for p in corpus.passages] == ["Choosing a site"] * 2 + ["The first season"] * 2 + ["Swarming"] * 2
    assert corpus.passages[0].text.startswith("A rooftop or a quiet corner")


# --------------------------------------------------------------------------- bad files


def make_bad_files(folder: Path) -> dict[str, str]:
    """Each bad file, made here from a real one, and the reason its warning must give."""
    shutil.copy(DOCS / "scanned-imagemagick-images.pdf", folder / "scan.pdf")
    shutil.copy(DOCS / "libreoffice-writer-password.pdf", folder / "locked.pdf")
    data = (DOCS / "report.pdf").read_bytes()
    (folder / "cut.pdf").write_bytes(data[: len(data) // 3])
    (folder / "notzip.docx").write_bytes(data[:5000])
    with zipfile.ZipFile(DOCS / "report.docx") as source, zipfile.ZipFile(folder / "bomb.docx", "w",
                                                                          zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            bomb.writestr(item, source.read(item))
        with bomb.open("word/media/zeros.bin", "w", force_zip64=True) as member:
            chunk = b"\0" * 1_000_000
            for _ in range(600):
                member.write(chunk)
    (folder / "huge.html").write_bytes(b"<html><body>" + b"<p>Un paragraphe de texte.</p>" * 700_000 + b"</body></html>")
    (folder / "deep.html").write_text("<html><body>" + "<div>" * 100_000 + "<p>Texte au fond.</p>" + "</div>" * 100_000
                                      + "</body></html>")
    return {"scan.pdf": "no text layer (a scanned PDF?)", "locked.pdf": "encrypted PDF",
            "cut.pdf": "damaged PDF", "notzip.docx": "damaged DOCX", "bomb.docx": "a zip bomb?",
            "huge.html": "over the 20 MB cap", "deep.html": "nested deeper than 256 elements"}


def test_bad_files_end_in_one_warning_each_and_the_rest_is_read(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    reasons = make_bad_files(folder)
    shutil.copy(DOCS / "report.docx", folder)
    shutil.copy(DOCS / "guide.epub", folder)
    shutil.copy(CORPUS / "000_45b29eb716e3d87d.txt", folder)
    corpus = load_corpus(folder)
    assert sorted(d.doc_id for d in corpus.documents) == ["000_45b29eb716e3d87d.txt", "guide.epub", "report.docx"]
    assert len(corpus.warnings) == len(reasons), corpus.warnings
    for name, reason in reasons.items():
        lines = [w for w in corpus.warnings if w.startswith(f"skipped {folder / name}: ")]
        assert len(lines) == 1 and reason in lines[0] and "\n" not in lines[0], (name, corpus.warnings)


@pytest.mark.slow
def test_qa_text_of_bad_files_warns_without_traceback(tmp_path):
    """The CLI on a folder of nothing but bad files: one line each, then the one-line error."""
    folder = tmp_path / "bad"
    folder.mkdir()
    make_bad_files(folder)
    for name in ("huge.html", "bomb.docx"):
        (folder / name).unlink()  # the slow ones are covered above
    result = subprocess.run([sys.executable, "-m", "qa", "text", str(folder)], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("qa: warning: skipped ") for line in lines[:-1])
    assert lines[-1] == "qa: error: no document could be read"


# --------------------------------------------------------------------------- cache, parallel


def test_unchanged_files_are_not_parsed_again(tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(DOCS / "news", folder)
    shutil.copy(DOCS / "report.pdf", folder)
    first = load_corpus(folder)
    assert (first.parsed, first.reused) == (6, 0)
    again = load_corpus(folder)
    assert (again.parsed, again.reused) == (0, 6) and texts(again) == texts(first)
    page = folder / "000_45b29eb716e3d87d.html"
    page.write_text(page.read_text(encoding="utf-8").replace("Sotchi", "Sochi"), encoding="utf-8")
    os.utime(folder / "report.pdf")  # touched, same bytes: hashed again, still not parsed
    changed = load_corpus(folder)
    assert (changed.parsed, changed.reused) == (1, 5)
    assert any("(Sochi)" in t for t in texts(changed))


def test_parallel_parsing_gives_what_one_process_gives(tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    shutil.copytree(DOCS / "news", folder)
    for name in ("report.pdf", "report.docx", "guide.epub", "multicolumn.pdf"):
        shutil.copy(DOCS / name, folder)
    monkeypatch.setattr(extraction, "idle_cores", lambda: 2)  # however busy the machine is
    seen: list[tuple[int, int, str]] = []
    parallel = load_corpus(folder, use_cache=False, progress_files=lambda *a: seen.append(a))
    assert parallel.parsed == 9 >= extraction.PARALLEL_MIN_FILES
    assert seen[-1][:2] == (9, 9) and {Path(name).name for _, _, name in seen} >= {"report.pdf", "guide.epub"}
    assert seen[0][0] == 1  # told as workers finish files (one process tells each file as it starts it)
    monkeypatch.setattr(extraction, "PARALLEL_MIN_FILES", 100)
    serial = load_corpus(folder, use_cache=False)
    assert [p.model_dump() for p in parallel.passages] == [p.model_dump() for p in serial.passages]
    assert parallel.warnings == serial.warnings == []


# --------------------------------------------------------------------------- qa text


@pytest.mark.slow
def test_qa_text_prints_the_passages_of_each_file():
    """`qa text` (the model's tokenizer splits as the index does, so it is marked slow)."""
    files = [str(DOCS / "report.pdf"), str(DOCS / "guide.epub")]
    result = subprocess.run([sys.executable, "-m", "qa", "text", "--json", *files], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["document"]["doc_id"] for d in documents] == ["report.pdf", "guide.epub"]
    pdf = documents[0]
    assert [normalise(p["text"]) for p in pdf["passages"] if normalise(p["text"]) in
            {normalise(x) for x in report_paragraphs()}] == [normalise(x) for x in report_paragraphs()]
    assert {p["page"] for p in pdf["passages"]} == {1, 2, 3}
    plain = subprocess.run([sys.executable, "-m", "qa", "text", files[0]], capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert plain.returncode == 0
    lines = plain.stdout.splitlines()
    assert lines[0].startswith(f"== report.pdf · title: {REPORT['TITLE']} · ")
    assert "report.pdf p. 3 ¶" in plain.stdout and "§ Perspectives" in plain.stdout
    assert report_paragraphs()[-1] in lines


# --------------------------------------------------------------------------- with the model


def test_seed_questions_answer_the_same_from_the_html_copies(tmp_path, embedder, retriever):
    """The newspaper pages of the five articles answer the seed questions with the same best
    passage as the .txt files. The one difference the formats keep: a .txt title line is the
    context of the paragraph below it, a page's headline is the document's title only, so a
    question may differ only where such a paragraph is one side's answer (2 of the 84 do)."""
    from qa.index import build_index
    from tests.conftest import open_retriever

    build_index([DOCS / "news"], tmp_path / "idx", embedder)
    from_html = open_retriever(tmp_path / "idx", embedder)
    questions = [json.loads(line)["question"] for line in (HERE / "data" / "seed_questions.jsonl").read_text(
        encoding="utf-8").splitlines() if line]
    titled = {(Path(p.doc_id).stem, p.text) for p in load_corpus(CORPUS).passages if p.context and p.context == p.title}
    same = 0
    for question in questions:
        html_hit = [(Path(h.doc_id).stem, h.text) for h in from_html.search(question, k=1)][0]
        txt_hit = [(Path(h.doc_id).stem, h.text) for h in retriever.search(question, k=1)][0]
        if html_hit == txt_hit:
            same += 1
        else:
            assert {html_hit, txt_hit} & titled, question
    assert same >= len(questions) - 3, same


def test_a_mixed_folder_is_indexed_and_answers_cite_pages_and_titles(tmp_path, embedder):
    folder = tmp_path / "archive"
    (folder / "notes").mkdir(parents=True)
    for name in ("report.pdf", "report.docx", "guide.epub"):
        shutil.copy(DOCS / name, folder)
    shutil.copy(DOCS / "news" / "001_707d7b5693acaa4b.html", folder)
    shutil.copy(CORPUS / "004_439350766ee36b46.txt", folder / "notes")
    (folder / "notes" / "todo.md").write_text("# Ruches\n\nCommander deux corps de ruche et des cadres avant "
                                              "la fin du mois de mars.\n", encoding="utf-8")
    shutil.copy(DOCS / "scanned-imagemagick-images.pdf", folder / "scan.pdf")
    index = tmp_path / "idx"
    built = subprocess.run([sys.executable, "-m", "qa", "index", "-q", str(folder), "--index", str(index)],
                           capture_output=True, text=True, timeout=600, cwd=REPO)
    assert built.returncode == 0, built.stderr
    assert built.stderr.strip() == (f"qa: warning: skipped {folder / 'scan.pdf'}: no text layer (a scanned PDF?); "
                                    "OCR it first to index it")
    assert built.stdout.startswith("6 documents, ")
    asked = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(index), "--json", "-k", "3",
                            "combien de documents le réseau a-t-il prêtés en 2023 ?"],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
    assert asked.returncode == 0, asked.stderr
    hits = json.loads(asked.stdout)["hits"]
    top = next(h for h in hits if "1,2 million de documents" in h["text"])  # (the table row may rank first)
    places = {(s["doc_id"], s["page"]) for s in [top, *top["other_sources"]]}
    assert places == {("report.pdf", 1), ("report.docx", None)}  # the same paragraph in both, once
    assert top["section"] == "Le réseau en bref"
    page = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(index), "--json", "-k", "1",
                           "--from", "2019-05-16", "--to", "2019-05-16", "Pompeo Lavrov Sotchi"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    hit = json.loads(page.stdout)["hits"][0]  # the page's own date, author and canonical URL
    assert (hit["doc_id"], hit["date"], hit["author"]) == ("001_707d7b5693acaa4b.html", "2019-05-16", "Service Monde")
    assert hit["url"] == "https://www.courrier-est.example/monde/asie/001_707d7b5693acaa4b.html"
    shown = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(index), "-k", "1",
                            "when do bees swarm?"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("1. guide.epub ¶") and " · 2022-06-01 · " in lines[0]
    assert lines[1].strip() == "A Field Guide to Urban Beekeeping · Marion Keller"
    assert lines[2].strip() in ("Swarming", "§ Swarming")  # the heading before it, or the section it is in
    pdf = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(index), "-k", "1", "--doc", "report.pdf",
                          "quand la rénovation de la bibliothèque des Tilleuls s'est-elle achevée ?"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert pdf.returncode == 0, pdf.stderr  # the source --doc asked for is cited first, the copy after it
    assert pdf.stdout.startswith("1. report.pdf p. 3 ¶") and "also in: report.docx ¶" in pdf.stdout, pdf.stdout


def test_a_pdf_title_that_is_a_file_name_is_not_the_title(tmp_path):
    """Word's PDFs carry "Microsoft Word - name.docx" as their title: the first heading is the
    title then (the metadata is rewritten by pypdf on LibreOffice's real report)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(DOCS / "report.pdf"))
    writer.add_metadata({"/Title": "Microsoft Word - rapport_2023_v3.docx"})
    with open(tmp_path / "rapport.pdf", "wb") as out:
        writer.write(out)
    document = load_corpus(tmp_path / "rapport.pdf").documents[0]
    assert document.title == REPORT["TITLE"]  # the first line, a heading, is the title
