"""Lexical ranking: BM25 (bm25s) over accent-folded, stemmed words.

Lexical matching is what dense retrieval is weakest at: names, numbers, dates, rare words. It
cannot match an English question to French text, so the fusion in `search` weighs it by
whether the question and the corpus share a language (see :func:`guess_language`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..text import fold, words

K1, B = 0.9, 0.4  # the datasets' reference BM25 settings; also the usual choice for short passages

# A few dozen of the most frequent function words per language: enough to tell languages apart
# on a question, and to keep them out of BM25 where they only add noise.
STOPWORDS = {
    "french": "le la les l un une des du de d et en au aux à a est sont été être que qui quoi quel quelle quels "
              "quelles ce cette ces c se s sa son ses leur leurs il ils elle elles on nous vous je j y ne n pas "
              "plus pour par sur dans avec sans sous ou où comment pourquoi quand combien qu lors dont".split(),
    "english": "the a an of and or in on at to for from by with without is are was were be been being it its "
               "this that these those he she they them his her their we you i what which who whom whose when "
               "where why how did do does done has have had not no as into about than then there".split(),
    "german": "der die das den dem des ein eine einer eines einem einen und oder in im an am auf aus bei mit "
              "von vom zu zum zur ist sind war waren wird wurde wurden nicht kein keine wer was wann wo warum "
              "wie welche welcher welches sich er sie es".split(),
    "spanish": "el la los las un una unos unas de del y o en al a es son fue fueron ser por para con sin que "
               "qué quien quién cuando cuándo donde dónde como cómo cual cuál se su sus lo le les no más".split(),
}


# Telling a question's language needs more function words than BM25 should drop: the Snowball
# stopword lists (trimmed) with pronouns, auxiliaries and question words. On the public sets'
# 6,380 questions (PIAF, XQuAD en-de, en-es, Tatoeba; their language is known) these leave 115 unclear
# instead of 384, and 4 wrong instead of 5
# (EVALUATION.md, "Question language").
_GUESS_WORDS = {
    "french": "au aux avec ce ces dans de des du elle en et eux il je la le leur lui ma mais me même mes moi mon ne "
              "nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre "
              "vous été étée étées étés étant suis es est sommes êtes sont serai seras sera serons serez seront "
              "serais serait serions seriez seraient étais était étions étiez étaient fus fut furent sois soit "
              "soyons soyez soient ayant eu eue eues eus ai as avons avez ont aurai auras aura aurons aurez auront "
              "aurais aurait aurions auriez auraient avais avait avions aviez avaient eut eurent aie aies ait "
              "ayons ayez aient ceci cela cet cette ici ils les leurs quel quels quelle quelles sans soi "
              "très tout tous toute toutes rien personne quelqu quelque chose aussi alors donc peut faut fait "
              "veux veut voulez pouvez dois doit avoir être ça ceux celle celui comme si oui non déjà encore "
              "jamais toujours beaucoup trop peu ici là maintenant aujourd hier demain".split(),
    "english": "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her "
               "hers herself it its itself they them their theirs themselves what which who whom this that these "
               "those am is are was were be been being have has had having do does did doing would should could "
               "ought cannot a an the and but if or because as until while of at by for with about against "
               "between into through during before after above below to from up down in out on off over under "
               "again further then once here there when where why how all any both each few more most other some "
               "such no nor not only own same so than too very can will just don now someone somebody something "
               "anyone anybody anything everyone everybody everything nobody nothing always never often yet "
               "still already here today tomorrow yesterday let shall may might must".split(),
    "german": "aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch "
              "auf aus bei bin bis bist da damit dann der den des dem die das dass daß dazu dein deine deinem "
              "deinen deiner deines denn derer dessen dich dir du dies diese diesem diesen dieser dieses doch "
              "dort durch ein eine einem einen einer eines einige einigem einigen einiger einiges einmal er ihn "
              "ihm es etwas euer eure eurem euren eurer eures für gegen gewesen hab habe haben hat hatte hatten "
              "hier hin hinter ich mich mir ihr ihre ihrem ihren ihrer ihres euch im in indem ins ist jede jedem "
              "jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein keine keinem keinen keiner keines "
              "können könnte machen man manche mein meine meinem meinen meiner meines mit muss musste nach nicht "
              "nichts noch nun nur ob oder ohne sehr sein seine seinem seinen seiner seines selbst sich sie ihnen "
              "sind so solche soll sollte sondern sonst über um und uns unsere unser unter viel vom von vor "
              "während war waren warst was weg weil weiter welche welchem welchen welcher welches wenn werde "
              "werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen".split(),
    "spanish": "de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya o este "
               "sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante "
               "todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras "
               "otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo "
               "nosotros mi mis tú te ti tu tus ellas nosotras vosotros vosotras os mío mía míos mías tuyo tuya "
               "tuyos tuyas suyo suya suyos suyas nuestro nuestra nuestros nuestras vuestro vuestra esos esas "
               "estoy estás está estamos estáis están esté estaba estaban estuvo he has ha hemos habéis han haya "
               "había habían hubo soy eres es somos sois son sea será era eran fui fue fueron tengo tienes tiene "
               "tenemos tienen tenía tuvo cómo cuándo dónde quién cuál cuántos cuántas".split(),
}


@lru_cache(maxsize=1)
def _guess_vocabulary() -> dict[str, frozenset[str]]:
    return {lang: frozenset(fold(w) for w in [*STOPWORDS[lang], *_GUESS_WORDS[lang]]) for lang in STOPWORDS}


def guess_language(texts: Sequence[str]) -> str | None:
    """The language whose function words are most frequent in `texts`, or None if unclear: no
    function word at all, or two languages within a factor 1.3 of each other. One word suffices
    when no other language claims any (a short question: "You look surprised.")."""
    counts: Counter[str] = Counter()
    vocabulary = _guess_vocabulary()
    for text in texts:
        for word in words(text):
            for lang, vocab in vocabulary.items():
                if word in vocab:
                    counts[lang] += 1
    if not counts:
        return None
    (best, n1), *rest = counts.most_common(2) + [("", 0)]
    return best if n1 > 1.3 * rest[0][1] else None


@lru_cache(maxsize=8)
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(language)


class Analyzer:
    """Text -> BM25 terms: fold, split on word characters, drop stopwords, stem."""

    def __init__(self, language: str | None):
        self.language = language if language in STOPWORDS else None
        stop = STOPWORDS.get(self.language, []) + (STOPWORDS["english"] if self.language != "english" else [])
        self.stopwords = {fold(w) for w in stop}

    def terms(self, text: str) -> list[str]:
        tokens = [w for w in words(text) if w not in self.stopwords]
        if self.language:
            tokens = _stemmer(self.language).stemWords(tokens)
        return tokens


class LexicalIndex:
    """BM25 over a list of passage texts, built in memory (a second or two per 100k passages)."""

    def __init__(self, texts: Sequence[str], language: str | None = None):
        import bm25s

        self.language = language if language is not None else guess_language(texts[:2000])
        self.analyzer = Analyzer(self.language)
        self._bm25 = bm25s.BM25(k1=K1, b=B)
        self._bm25.index([self.analyzer.terms(t) for t in texts], show_progress=False)
        self._vocab = self._bm25.vocab_dict
        self.size = len(texts)

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question` (zeros when no term matches)."""
        terms = [t for t in self.analyzer.terms(question) if t in self._vocab]
        if not terms or self.size == 0:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
