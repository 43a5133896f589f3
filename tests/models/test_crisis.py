"""The crisis-language detector: recall first, idioms and prevention talk left alone."""

from __future__ import annotations

import random
import re

import pytest

from models import language
from models.crisis import CrisisDetector
from models.registry import Registry


@pytest.fixture(scope="module")
def detector():
    return CrisisDetector.load(Registry().card("crisis-lexicon").path)


@pytest.mark.parametrize("lang", language.LANGUAGES)
def test_every_simulated_crisis_sentence_fires_and_no_idiom_does(detector, lang):
    rng = random.Random(f"test:{lang}")
    assert all(detector.detect(language.crisis_sentence(lang, rng), lang).flagged for _ in range(500))
    assert not any(detector.detect(language.idiom_sentence(lang, rng), lang).flagged for _ in range(500))
    assert not any(detector.detect(language.prevention_sentence(lang, rng), lang).flagged for _ in range(300))


# Written by hand, outside the simulator's phrase bank.
PARAPHRASES = {
    "en": ["I'm going to take my own life this weekend", "i honestly just want to die",
           "thinking about killing myself again", "I feel suicidal tonight", "I'm ready to end it",
           "i cant do this anymore, i want to end my life", "I've got the pills ready",
           "my family would be better off without me", "I wrote a suicide note", "I don’t want to wake up tomorrow"],
    "es": ["ya no quiero vivir", "me quiero morir", "he pensado en suicidarme", "tengo las pastillas preparadas",
           "quiero desaparecer para siempre", "mañana voy a acabar con todo", "no aguanto más, me voy a matar",
           "estarían mejor sin mí", "dejé una carta de despedida", "pienso en quitarme la vida"],
}
HARD_NEGATIVES = {
    "en": ["I could murder a pizza", "that exam nearly killed me", "I'm dying of boredom", "the battery died",
           "we talked about suicide prevention at school", "my grandad died last year and I miss him",
           "a friend who was suicidal got help from the hotline", "this song slaps, I'm dead"],
    "es": ["me muero de sueño", "este calor me mata", "el perro murió el año pasado",
           "hablamos de prevención del suicidio en clase", "me muero por verte", "me mata la espera",
           "la línea de prevención del suicidio ayuda mucho"],
}


@pytest.mark.parametrize("lang", language.LANGUAGES)
def test_handwritten_paraphrases_and_hard_negatives(detector, lang):
    assert [t for t in PARAPHRASES[lang] if not detector.detect(t, lang).flagged] == []
    assert [t for t in HARD_NEGATIVES[lang] if detector.detect(t, lang).flagged] == []


def test_without_a_language_tag_every_language_is_tried(detector):
    assert detector.detect("quiero matarme").flagged
    assert detector.detect("I want to kill myself", "fr").flagged


def test_the_result_names_kinds_never_words(detector):
    result = detector.detect("I have been saving pills. I wrote a goodbye letter.", "en")
    assert result.kinds == ("method", "plan")
    assert "pills" not in repr(result)


def test_the_card_reports_held_out_results_per_language():
    card = Registry().card("crisis-lexicon")
    assert set(card.manifest["metrics"]["held_out_synthetic"]) == set(language.LANGUAGES)
    assert "not clinically validated" in card.manifest["clinical_validation"].lower()


def test_a_pattern_split_at_its_dot_star_finds_the_same_sentences_as_the_whole(detector):
    """`A.*B` is searched as A, then B after it (linear in the sentence, where one regex tried `.*` again from
    every A): on sentences built from the pattern's own parts, in every order, it decides as the whole regex."""
    split = [(p, re.compile(f"{p.head.pattern}.*{p.tail.pattern}", re.IGNORECASE))
             for patterns in detector._patterns.values() for _, _, p in patterns if p.tail is not None]
    assert split, "the lexicon has no pattern split at a .*: this test no longer tests anything"
    rng = random.Random(7)
    for pattern, whole in split:
        words = re.findall(r"[^\W\d_]+", pattern.head.pattern + " " + pattern.tail.pattern) + ["x", "pill", "die"]
        heads = ["how many pills", "how many tablets", "cuántas pastillas", "cuantas pastillas"]
        for _ in range(3_000):
            parts = [rng.choice(words + heads) for _ in range(rng.randint(1, 12))]
            sentence = rng.choice([" ", "", "  "]).join(parts).lower()
            assert pattern.search(sentence) == bool(whole.search(sentence)), sentence
