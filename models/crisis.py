"""The crisis-language detector behind the safety rule (CONTRACT §2).

A curated lexicon of explicit intent, plan and method expressions in every
language the simulator writes, matched sentence by sentence. Recall comes
first: a match is a `critical` alert whatever any model says. Precision
comes from what the patterns leave out: everyday idioms ("dying to see it",
"me muero de ganas") match nothing, and a bare mention of suicide does not
fire in a sentence about prevention or support.

The result names the kinds of expression found (intent, plan, method),
never the words: the text goes no further than this module.
NOT CLINICALLY VALIDATED: evaluated on synthetic text only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CrisisDetector", "CrisisResult"]

_SENTENCES = re.compile(r"[.!?;\n]+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})


class _Pattern:
    """A lexicon pattern, searched in time linear in the sentence's length.

    `A.*B` (one `.*` outside any group and class) is searched as A, then B from the end of the first A: the
    same sentences. As one regex, the engine tries `.*` again from every A: a 10,000-character sentence that
    repeats A and has no B took 0.27 s, and a batch of such texts would hold every person's events back.
    """

    __slots__ = ("head", "tail")

    def __init__(self, source: str) -> None:
        parts = _split_at_any(source)
        self.head = re.compile(parts[0], re.IGNORECASE)
        self.tail = re.compile(parts[1], re.IGNORECASE) if len(parts) == 2 else None

    def search(self, sentence: str) -> bool:
        found = self.head.search(sentence)
        if found is None or self.tail is None:
            return found is not None
        return self.tail.search(sentence, found.end()) is not None


def _split_at_any(source: str) -> list[str]:
    """`source` split at its one `.*` outside any group and character class, if it has exactly one."""
    depth, in_class, escaped, at = 0, False, False, []
    for i, char in enumerate(source):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "." and depth == 0 and source[i + 1:i + 2] == "*" and source[i + 2:i + 3] not in ("?", "+"):
            at.append(i)
    return [source[:at[0]], source[at[0] + 2:]] if len(at) == 1 else [source]


@dataclass(frozen=True, slots=True)
class CrisisResult:
    flagged: bool
    kinds: tuple[str, ...] = ()


class CrisisDetector:
    def __init__(self, *, lexicon: dict) -> None:
        self.name = lexicon["name"]
        self.version = lexicon["version"]
        self._prevention = {lang: re.compile(p, re.IGNORECASE) for lang, p in lexicon["prevention"].items()}
        self._patterns = {
            lang: [(p["kind"], p["class"], _Pattern(p["re"])) for p in patterns]
            for lang, patterns in lexicon["patterns"].items()
        }
        #: per language, any pattern at all (the part before `.*` of a pattern split there): a sentence that
        #: matches none (most) is passed over in one search
        self._any = {lang: re.compile("|".join(f"(?:{pattern.head.pattern})" for _, _, pattern in patterns),
                                      re.IGNORECASE)
                     for lang, patterns in self._patterns.items()}
        self.languages = tuple(self._patterns)

    @classmethod
    def load(cls, path: str | Path) -> "CrisisDetector":
        return cls(lexicon=json.loads(Path(path).read_text(encoding="utf-8")))

    def detect(self, text: str, lang: str | None = None) -> CrisisResult:
        """Every known language is tried when `lang` is missing or unknown: a crisis is never missed for a tag."""
        language = (lang or "").split("-")[0].lower()
        languages = (language,) if language in self._patterns else self.languages
        kinds: set[str] = set()
        for sentence in _SENTENCES.split(text.translate(_APOSTROPHES).lower()):
            if not sentence.strip():
                continue
            for lang_code in languages:
                if not self._any[lang_code].search(sentence):
                    continue
                about_prevention = None
                for kind, klass, pattern in self._patterns[lang_code]:
                    if kind in kinds or not pattern.search(sentence):
                        continue
                    if klass == "mention":
                        if about_prevention is None:
                            about_prevention = bool(self._prevention[lang_code].search(sentence))
                        if about_prevention:
                            continue
                    kinds.add(kind)
        return CrisisResult(flagged=bool(kinds), kinds=tuple(sorted(kinds)))
