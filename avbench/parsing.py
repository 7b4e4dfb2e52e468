"""Helpers shared by the task parsers and loaders: tags, numbers, class names, time ranges, maps, ids.

Model text is free-form (Crab reasons first, then answers in tags). Every helper here is tolerant of
the ways a model drifts from the requested form, and raises `ParseError` with a short reason when
nothing usable is left; docs/parsing.md lists each task's accepted forms and failure cases.

No library in the allowed stack parses loosely-tagged LLM text (an HTML/XML parser rejects or
re-nests unclosed tags, and Crab's tags are not markup), so the tag scanner is written here; name
matching uses the standard library's `difflib`.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ParseError

# ---- text ---------------------------------------------------------------------------------------------
#: Characters NFKC leaves alone but a model may write for ASCII: minus signs, zero-width spaces, BOM.
_TEXT_FIXES = str.maketrans({"\u2212": "-", "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": ""})


def normalize_text(text: str) -> str:
    """Unicode NFKC (full-width `＜answer＞`, `（3，5）` become ASCII), unicode minus as `-`, no zero-width chars."""
    return unicodedata.normalize("NFKC", text).translate(_TEXT_FIXES)


#: Wrappers a model puts around a value: markdown emphasis and code, quotes (ASCII and typographic).
_WRAPPERS = "*_`\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"


def clean_value(text: str) -> str:
    """A tag's value without surrounding whitespace, markdown, quotes and punctuation.

    `**Bark**`, `"yes."`, `` `two` `` become `Bark`, `yes`, `two`. Brackets are kept (`Frying (food)`).
    """
    text = text.strip()
    previous = None
    while text != previous:  # peel layers in any order: '"**yes**".' -> 'yes'
        previous = text
        text = text.strip().strip(_WRAPPERS).strip().strip(".,;:!?").strip()
    return text


# ---- tags ---------------------------------------------------------------------------------------------
#: Anything that looks like a tag: `<name>`, `</name>`, `< /name >`, `<\name>` (a common slip), `</s>`.
#: Bounded repetitions keep the scan linear on long or adversarial text.
_TAG_TOKEN = re.compile(r"<\s{0,3}([/\\]?)\s{0,3}([A-Za-z][A-Za-z0-9_-]{0,40})\s{0,3}>")


@dataclass(frozen=True)
class Tag:
    """One occurrence of a tag in model text.

    `name` is the opening name as written, lower-cased (`audio_event`); `body` the raw text between
    the opening and where the value ends; `closed` whether a matching closing tag ended it.
    """

    name: str
    body: str
    closed: bool
    start: int


def find_tags(text: str, names: Iterable[str]) -> list[Tag]:
    """Every occurrence of a tag called one of `names` (aliases of one tag, case-insensitive), in order.

    A value ends at the first tag-like token after the opening tag. If that token closes the tag
    (any of `names`), the tag is closed and its value may span lines. Otherwise the closing tag is
    missing, and the value also ends at the first line break after it starts (`<answer>yes` at the
    end of the text, `<event>Bark` followed by a new line, `<answer>yes</s>`); such an unclosed tag
    whose value is blank is not a tag at all (an echoed placeholder like `<audio_start><audio><audio_end>`).
    So a value never contains another tag: in `<a>x <b>y</b> </a>`, `<a>`'s value is `x `.
    """
    wanted = {name.lower() for name in names}
    tokens = list(_TAG_TOKEN.finditer(text))
    tags = []
    for i, token in enumerate(tokens):
        if token.group(1) or token.group(2).lower() not in wanted:
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        end = following.start() if following is not None else len(text)
        body = text[token.end():end]
        closed = following is not None and bool(following.group(1)) and following.group(2).lower() in wanted
        if not closed:
            body = body.lstrip().split("\n", 1)[0]
            if not body.strip():
                continue
        tags.append(Tag(token.group(2).lower(), body, closed, token.start()))
    return tags


def last_tag(text: str, names: Iterable[str], form: str) -> Tag:
    """The last occurrence of a tag (the model's final word when it restates or corrects itself).

    Raises ParseError naming the expected `form` when there is none.
    """
    tags = find_tags(text, names)
    if not tags:
        raise ParseError(f"no {form} in the output")
    return tags[-1]


# ---- numbers ------------------------------------------------------------------------------------------
#: A decimal number that is not part of a word: `x1`, `mp4` hold no number, `8th` and `3s` do. A minus is
#: a sign only when it does not follow a word, a dot or a closing bracket: `2-8` is 2 and 8, `(-1 5)` -1 and 5.
NUMBER = r"(?:(?<![\w.)\]])-)?(?<![\w.])\d+(?:\.\d+)?"
_NUMBER = re.compile(NUMBER)


def numbers_in(text: str) -> list[float]:
    """All numbers in `text`, in order (see `NUMBER` for what counts as one)."""
    return [float(value) for value in _NUMBER.findall(text)]


def whole_second_range(start: float | str, end: float | str, n_segments: int) -> tuple[int, int]:
    """A time range in whole seconds (end exclusive), rounded to the nearest second and clipped to [0, n].

    Halves round up: Python's round() would send 2.5 to 2 but 3.5 to 4. An end before the start is
    a parse failure (never swapped: nothing official reads a reversed range, and a model that writes
    one has not said when the event happens).
    """
    try:
        values = [float(v) for v in (start, end)]
    except (TypeError, ValueError):
        raise ParseError(f"time range {start!r}-{end!r} is not two numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ParseError(f"time range {start}-{end} is not finite")
    start, end = (min(max(math.floor(v + 0.5), 0), n_segments) for v in values)
    if end < start:
        raise ParseError(f"time range {start}-{end} ends before it starts (whole seconds, end exclusive, 0..{n_segments})")
    return start, end


# ---- class names --------------------------------------------------------------------------------------
def class_key(name: str) -> str:
    """A class name reduced to lower-case letters and digits: 'Violin, fiddle' == 'violin fiddle'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def class_lookup(names: Iterable[str]) -> dict[str, str]:
    """`class_key(name) -> name` for a vocabulary, to map a model's spelling back to the release's."""
    return {class_key(name): name for name in names}


#: Words that say nothing about which class is meant ("the sound of a dog" is "dog").
_FILLER_WORDS = frozenset({"a", "an", "the", "of", "sound", "sounds", "noise", "noises"})


def _stem(word: str) -> str:
    """A crude English stem, enough for class names: plurals to singular (violins, buses, bodies ->
    violin, bus, body) and `-ing` dropped (barking, crying, clapping -> bark, cry, clap). Applied to
    both the vocabulary and the model's words, so only agreement matters, not linguistic accuracy."""
    if len(word) > 5 and word.endswith("ing"):
        stem = word[:-3]
        return stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz" else stem
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in re.split(r"[^a-z0-9]+", text.lower()) if w and w not in _FILLER_WORDS)


class ClassMatcher:
    """Maps a model's spelling of a class name onto a vocabulary, or fails; see `match`.

    `aliases` maps a class name to other names for it that are not in the release's name (e.g.
    AVE's `Bark` is also "Dog"); `what` names the vocabulary in error messages.
    """

    #: difflib similarity (2 * matches / total length) a misspelling must reach: one wrong letter in
    #: seven (`ukelele` 0.857), two transposed in nine (`accordian` 0.889); `cello`/`hello` (0.8) stays apart.
    CUTOFF = 0.85
    #: Shorter spellings are only matched exactly: one letter decides between `cat`, `car` and `cart`.
    MIN_FUZZY_LENGTH = 5

    def __init__(self, names: Sequence[str], aliases: Mapping[str, Sequence[str]] | None = None, what: str = "class"):
        self.names = tuple(names)
        self.what = what
        aliases = aliases or {}
        unknown = [name for name in aliases if name not in self.names]
        if unknown:
            raise ValueError(f"aliases for names not in the vocabulary: {unknown}")
        self._keys: dict[str, str] = {}  # class_key of a name or alias -> name
        self._forms: dict[str, set[str]] = {}  # singular word sequence -> names
        self._word_sets: dict[str, set[str]] = {}  # name -> every word of it and its aliases
        for name in self.names:
            spellings = [name, *aliases.get(name, ())]
            self._word_sets[name] = set()
            for spelling in spellings:
                self._keys.setdefault(class_key(spelling), name)
                words = _words(spelling)
                self._forms.setdefault("".join(words), set()).add(name)
                self._word_sets[name].update(words)
        self._longest_key = max(len(k) for k in self._keys)

    def match(self, text: str) -> str:
        """The vocabulary name `text` means, tried in this order (the first rule that decides wins):

        1. the same letters and digits (`violin fiddle`, `VIOLIN_FIDDLE` = `Violin, fiddle`), name or alias;
        2. the same words once stemmed (plurals, `-ing`) and filler words dropped (`the dogs` = `Dog`);
        3. words all found in exactly one class (`violin` or `fiddle` -> `Violin, fiddle`;
           `speech` is in two AVE classes and fails);
        4. a misspelling: exactly one class whose name or alias reaches `CUTOFF` in difflib's ratio
           (`Accordian` -> `Accordion`), for spellings of at least `MIN_FUZZY_LENGTH` letters.
        Anything else raises ParseError (unknown, or ambiguous).
        """
        value = clean_value(normalize_text(text))
        key = class_key(value)
        if not key:
            raise ParseError(f"empty {self.what} name")
        if key in self._keys:
            return self._keys[key]
        if len(key) > 2 * self._longest_key + 10:  # a sentence, not a name: no rule below could be meant
            raise ParseError(f"unknown {self.what} {shorten(value)!r}")
        words = _words(value)
        form = self._forms.get("".join(words), set())
        if len(form) == 1:
            return next(iter(form))
        if words:
            containing = [name for name, vocab in self._word_sets.items() if set(words) <= vocab]
            if len(containing) == 1:
                return containing[0]
            if len(containing) > 1:
                raise ParseError(f"ambiguous {self.what} {shorten(value)!r}: could be {', '.join(containing)}")
        if len(key) >= self.MIN_FUZZY_LENGTH:
            close = sorted({name for k, name in self._keys.items()
                            if difflib.SequenceMatcher(None, key, k).ratio() >= self.CUTOFF})
            if len(close) == 1:
                return close[0]
            if len(close) > 1:
                raise ParseError(f"ambiguous {self.what} {shorten(value)!r}: could be {', '.join(close)}")
        raise ParseError(f"unknown {self.what} {shorten(value)!r}")


def shorten(text: str, limit: int = 60) -> str:
    """Text for an error message: long values cut, so a failure reason stays one short line."""
    return text if len(text) <= limit else text[:limit] + "..."


# ---- maps ---------------------------------------------------------------------------------------------
def map_list(masks: Any) -> list[Any]:
    """`ModelOutput.masks` as a list of per-frame maps; ParseError when there are none or it is not a sequence."""
    if masks is None:
        raise ParseError("the model returned no masks")
    if isinstance(masks, (str, bytes, dict)):
        raise ParseError(f"masks must be a list of per-frame maps, got {type(masks).__name__}")
    try:
        return list(masks)
    except TypeError:
        raise ParseError(f"masks must be a list of per-frame maps, got {type(masks).__name__}") from None


def as_2d_map(array: Any, index: int) -> np.ndarray:
    """A model's per-frame map as a non-empty 2-D numpy array; a singleton axis ((1, H, W), (H, W, 1)) is dropped.

    Anything else (None, a ragged list, an unconvertible object, another shape) raises ParseError.
    """
    try:
        array = np.asarray(array)
    except Exception as exc:  # numpy raises several types on ragged or odd input; all mean "not a map"
        raise ParseError(f"map {index} is not an array ({type(exc).__name__})") from None
    if array.dtype == object:
        raise ParseError(f"map {index} is not a numeric array")
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2 or 0 in array.shape:
        raise ParseError(f"map {index} must be a non-empty 2-D array, got shape {array.shape}")
    return array


# ---- ids ----------------------------------------------------------------------------------------------
class RepeatedIds:
    """Releases repeat some ids and their official code scores every row: the k-th repeat becomes `<id>#k`."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def __call__(self, raw_id: str) -> str:
        self._seen[raw_id] += 1
        count = self._seen[raw_id]
        return raw_id if count == 1 else f"{raw_id}#{count}"
