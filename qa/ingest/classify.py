"""Which blocks of an article are content: boilerplate rules, then headings and the title.

Boilerplate is dropped: advertising markers, comment forms, share, subscribe, cookie and
copyright notices, short lines repeated within a document or across documents. Each block is
judged on its own: a comment form drops its marker, the short lines after it (field labels,
names, dates, "Répondre") and the readers' comments ("Jane Doe says: ..."), and the first real
paragraph after it is content again, so text after
a comment form (a second article in the same file) is never lost. Its patterns fire only on short blocks, since a real paragraph may mention cookies.
Of the rest, a short line without final punctuation is a heading, kept as the context of the
paragraph it introduces; the leading one is the document's title.
"""

from __future__ import annotations

import re
from collections import Counter

from ..text import fold, normalise
from .blocks import Block, ParsedDocument

# A heading is one short line; longer or punctuated lines are prose.
HEADING_MAX_WORDS = 16
HEADING_MAX_CHARS = 140
HEADING_RUN_MAX = 3  # more consecutive short lines than this are content (a list), not headings
NOT_HEADING_ENDINGS = ".…:;,"
CLOSERS = "\"'»”’)]*_ \u00a0\u202f"

# Short lines repeated within a document or across documents are page furniture.
REPEATED_MAX_WORDS = 6
# Boilerplate patterns only fire on blocks this short: a real paragraph may mention cookies.
PATTERN_MAX_WORDS = 40
START_PATTERN_MAX_WORDS = 30
COMMENT_MARKER_MAX_WORDS = 8
# Inside a comment section, blocks this short are the form's furniture (labels, names, dates);
# the first longer block that is not a notice ends the section.
COMMENT_FORM_MAX_WORDS = 20

# The whole block is page furniture.
_WHOLE = re.compile(r"""(?x)
    (publicite|pub|advertisement|advertising|advert|ads?|annonces?|sponsorise|contenu\ sponsorise
     |sponsored(\ content)?|contenu\ partenaire|partner\ content
     |menu|accueil|home|rechercher|search|fermer|close|retour\ en\ haut|back\ to\ top|haut\ de\ page
     |lire\ la\ suite|read\ more|voir\ plus|en\ savoir\ plus|continue\ reading|continuer\ la\ lecture
     |suivant|precedent|next|previous|newsletter|cookies?|(\d+\ )?(commentaires?|comments?|reactions?)
     |reagir|reagissez|repondre|reply)
""")
# Sharing widgets: a sharing verb or a network, with at most a few filler words.
_SHARE_WORDS = set("""partager partagez share tweet tweeter imprimer print email e mail envoyer send
    facebook twitter x linkedin whatsapp pinterest reddit telegram messenger flipboard copier copy""".split())
_SHARE_FILLERS = set("le la lien link cet article this post story sur on via par by ou or".split())
# The block starts like a cross-link, a call to subscribe or share, or a comment form.
_START = re.compile(r"""(?x)
    ((a\ )?lire\ (aussi|egalement)|(voir|lisez)\ aussi|read\ (more|also)|see\ also|related(\ \w+)?\ *:
     |sur\ le\ meme\ (sujet|theme)|(abonnez|inscrivez)[-\ ]vous|suivez[-\ ]nous|follow\ us
     |(subscribe|sign\ up)\b.*\b(newsletter|updates|free|now|today)
     |partagez?(\ cet\ article|\ sur\b|\ via\b|\ *:)|share\ (this|on|via)\b
     |publicite\b|advertisement\b|(cliquez|click)\ (ici|here)\b|credits?\ photos?\b|photo\ credits?\b
     |(laissez|laisser|ajouter|ajoutez|ecrire|poster|postez)\ un\ commentaire|leave\ a\ (comment|reply)
     |post\ a\ comment)
""")
# Phrases that only occur in notices (comment forms, copyright, cookies, paywalls).
_ANYWHERE = re.compile(r"""(?x)
    adresse\ (e-?mail|mail|electronique|de\ messagerie)\ ne\ sera\ pas\ publiee
    |e-?mail\ address\ will\ not\ be\ published|champs\ (obligatoires|requis)|required\ fields\ are\ marked
    |tous\ droits\ reserves|all\ rights\ reserved|©|\bcopyright\b
    |(utilise|utilisons|utilisent|utilisez)\ des\ cookies|\buses?\ cookies|(accepte[rsz]?|refuse[rsz]?)
     \ (les\ |tous\ les\ )?cookies|accept\ (all\ )?cookies|cookie\ (policy|settings|preferences)
    |politique\ (de\ confidentialite|relative\ aux\ cookies|de\ cookies)|privacy\ policy|mentions\ legales
    |conditions\ (generales\ )?d'utilisation|terms\ (of\ use|of\ service|and\ conditions)
    |(inscrivez|abonnez)[-\ ]vous\ (a|au)\ (notre|la|nos)\ newsletter|sign\ up\ for\ (our|the)\ newsletter
    |(recevez|recevoir)\ (notre|la|nos)\ newsletters?|reserve\ aux\ abonnes|subscribers\ only
    |vous\ devez\ etre\ connecte|you\ must\ be\ logged\ in|cet\ article\ vous\ a\ plu
""")
# A reader's comment as comment systems print it: "Jane Doe says:", "Marie a écrit :", then the text.
_READER_COMMENT = re.compile(r"(?x) ^ [^\n:]{1,60}? \s (says|said|wrote|dit|a\ dit|a\ ecrit|ecrit|repond) \s* : ")
_COMMENT_MARKER = re.compile(r"""(?x)
    ((laissez|laisser|ajouter|ajoutez|ecrire|poster|postez)\ un\ commentaire|leave\ a\ (comment|reply)
     |post\ a\ comment|add\ a\ comment)\b
""")


def _boilerplate_reason(text: str) -> str | None:
    """Why a block is boilerplate by its wording alone, or None."""
    if len(text.split()) > PATTERN_MAX_WORDS:
        return None  # notices are short; a long paragraph that mentions cookies is content
    folded = " ".join(fold(text).split())
    bare = folded.strip(" .:!-–—|•*#>")
    n_words = len(folded.split())
    if _WHOLE.fullmatch(bare):
        return "page furniture"
    words = normalise(text).split()
    if (words and len(words) <= 8 and any(w in _SHARE_WORDS for w in words)
            and all(w in _SHARE_WORDS or w in _SHARE_FILLERS for w in words)):
        return "share widget"
    if n_words <= START_PATTERN_MAX_WORDS and _START.match(bare):
        return "cross-link or call to action"
    if n_words <= PATTERN_MAX_WORDS and _ANYWHERE.search(folded):
        return "notice"
    return None


def _is_comment_marker(text: str) -> bool:
    """The start of a comment section: what follows it is readers' text, not the article."""
    if len(text.split()) > 2 * COMMENT_MARKER_MAX_WORDS:
        return False
    bare = " ".join(fold(text).split()).strip(" .:!-|•*#>")
    return len(bare.split()) <= COMMENT_MARKER_MAX_WORDS and bool(_COMMENT_MARKER.match(bare))


def repeated_short_keys(docs: list[ParsedDocument]) -> set[str]:
    """Short lines found twice in one text file or in two distinct documents: site furniture.

    Within a document of another format the rule does not apply: its reader has already told
    the page's furniture from its content (trafilatura; a PDF's running headers), and a short
    line repeated in the text it kept is structure (a recipe's "Eat every 2-3 hours")."""
    per_doc: dict[str, set[str]] = {}
    repeated: set[str] = set()
    for doc in docs:
        counts = Counter(k for b in doc.blocks if (k := short_key(b.text)))
        if not doc.structured:
            repeated.update(k for k, n in counts.items() if n > 1)
        for key in counts:
            per_doc.setdefault(key, set()).add(doc.sha256)  # identical files count once
    repeated.update(k for k, shas in per_doc.items() if len(shas) > 1)
    return repeated


def short_key(text: str) -> str | None:
    if len(text.split()) > 3 * REPEATED_MAX_WORDS:
        return None  # cheap pre-check: normalising cannot shrink this to a short line
    key = normalise(text)
    return key if key and len(key.split()) <= REPEATED_MAX_WORDS else None


# --------------------------------------------------------------------------- classification


def classify(doc: ParsedDocument, repeated: set[str]) -> None:
    """Set each block's kind: boilerplate first (so it is never a heading), then headings.

    A comment-form marker after the article's first paragraph opens a comment section: its short
    blocks and notices are dropped; the first block of prose ends it, and the heading-like lines
    just before that prose (the next article's title) are given back to it. Before any
    paragraph, a marker is only a stray link, dropped alone.
    """
    seen_paragraph = False
    comment_section: list[Block] | None = None  # the blocks dropped since the marker, when inside one
    for block in doc.blocks:
        if seen_paragraph and _is_comment_marker(block.text):
            block.kind, block.reason = "boilerplate", "comment form"
            comment_section = []
            continue
        if comment_section is not None:
            if (_boilerplate_reason(block.text) or len(block.text.split()) <= COMMENT_FORM_MAX_WORDS
                    or _READER_COMMENT.match(fold(block.text))):
                block.kind, block.reason = "boilerplate", "comment form"
                comment_section.append(block)
                continue
            for heading in _trailing_headings(comment_section):
                _classify_block(heading, repeated)
            comment_section = None
        seen_paragraph = _classify_block(block, repeated) or seen_paragraph
    _resolve_headings(doc)


def _classify_block(block: Block, repeated: set[str]) -> bool:
    """Set one block's kind by its own text; True when it is a paragraph."""
    if reason := _boilerplate_reason(block.text):
        block.kind, block.reason = "boilerplate", reason
    elif short_key(block.text) in repeated and not block.md_heading:  # a heading by markup is no furniture
        block.kind, block.reason = "boilerplate", "repeated short line"
    elif not any(c.isalnum() for c in block.text):
        block.kind, block.reason = "dropped", "no words"
    elif block.md_heading or _looks_like_heading(block):
        block.kind = "heading"
    else:
        block.kind, block.reason = "paragraph", ""
        return True
    return False


def _trailing_headings(blocks: list[Block]) -> list[Block]:
    """The heading-like lines at the end of `blocks` (at most HEADING_RUN_MAX), in order."""
    trailing: list[Block] = []
    for block in reversed(blocks):
        if len(trailing) == HEADING_RUN_MAX or not (block.md_heading or _looks_like_heading(block)):
            break
        trailing.insert(0, block)
    return trailing


def _looks_like_heading(block: Block) -> bool:
    """One short line without final sentence punctuation (a question or exclamation is allowed)."""
    if block.n_lines != 1 or len(block.text) > HEADING_MAX_CHARS:
        return False
    if len(block.text.split()) > HEADING_MAX_WORDS:
        return False
    core = block.text.rstrip(CLOSERS)
    return bool(core) and core[-1] not in NOT_HEADING_ENDINGS and any(c.isalpha() for c in core)


def _resolve_headings(doc: ParsedDocument) -> None:
    """Headings count only when they introduce a paragraph; the leading one is the title."""
    content = [b for b in doc.blocks if b.kind in ("heading", "paragraph")]
    if not any(b.kind == "paragraph" for b in content):
        for b in content:  # a note made only of short lines: they are its content
            b.kind = "paragraph"
        return
    run: list[Block] = []
    seen_paragraph = False
    for block in content + [None]:  # type: ignore[list-item]
        if block is not None and block.kind == "heading":
            run.append(block)
            continue
        if block is None:
            for b in run:  # short lines at the end; in a reader's text (no furniture left) they are content
                if doc.structured and not b.md_heading:
                    b.kind = "paragraph"
                else:
                    b.kind, b.reason = "dropped", "heading without a paragraph"
        elif len(run) > HEADING_RUN_MAX and not all(b.md_heading for b in run):
            for b in run:  # a list of short lines; headings of the file's own markup stay headings
                b.kind = "heading" if b.md_heading else "paragraph"
        elif run and not seen_paragraph:
            run[0].kind = "title"
            doc.title = doc.title or run[0].text
        if block is not None:
            seen_paragraph = True
        run = []
