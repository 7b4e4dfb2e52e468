"""Masks bounded by the answer's words (`SegSettings.masks_follow_answer`, avbench's addition to inference).

A Crab-style answer states its evidence before its mask tokens ("The sounding objects are lion.",
"The sounding object is not in the video."). Crab's masks come from the decoder alone, which a small
model trains to ignore the prompt (docs/training.md). With the option on, the words bound the masks:
an answer that says its referent is absent gets empty masks, and an AVSS map labels the binary mask's
foreground with a class the answer names.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import torch

from avbench.parsing import class_key, normalize_text


def says_absent(text: str, phrase: str | None) -> bool:
    """Whether `text` (the answer before its first mask token) says the referent is absent, in the task's
    words (`Task.absent_phrase`); case and spacing do not matter."""
    if not phrase:
        return False
    return _folded(phrase) in _folded(text)


def _folded(text: str) -> str:
    return " ".join(normalize_text(text).lower().split())


_SEPARATOR = re.compile(r"[-_\s]+")


@lru_cache(maxsize=8)
def _name_index(names: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, int]]:
    """A pattern matching any of `names` as whole words, and `class_key` of a name -> its index."""
    # longest first, so that `emergency-car` wins over `car` at the same place; hyphens, underscores
    # and spaces are one separator; a plural s / es is allowed
    spelled = [_SEPARATOR.pattern.join(map(re.escape, _SEPARATOR.split(name))) for name in sorted(names, key=len, reverse=True)]
    pattern = re.compile(r"\b(" + "|".join(spelled) + r")(?:e?s)?\b", re.IGNORECASE)
    return pattern, {class_key(name): index for index, name in enumerate(names)}


def named_classes(text: str, names: Sequence[str]) -> list[int]:
    """Indices into `names` of the class names `text` mentions as whole words, in order of first mention,
    each once. Index 0 (background) is never matched."""
    pattern, index_of = _name_index(tuple(names[1:]))
    found: list[int] = []
    for match in pattern.finditer(normalize_text(text)):
        index = index_of[class_key(match.group(1))] + 1
        if index not in found:
            found.append(index)
    return found


def label_foreground(binary_logits: torch.Tensor, class_logits: torch.Tensor, class_ids: Sequence[int]) -> torch.Tensor:
    """(G, S, S) class-id maps: background (0) where the binary logit is <= 0 (p <= 0.5), elsewhere the
    class among `class_ids` that `class_logits` (G, K, S, S) scores highest at that pixel."""
    ids = torch.as_tensor(list(class_ids), dtype=torch.int64, device=class_logits.device)
    labels = ids[class_logits.index_select(1, ids).argmax(dim=1)]
    return torch.where(binary_logits > 0, labels, torch.zeros_like(labels))
