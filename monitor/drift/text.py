"""Cheap descriptors that turn a text column into numerical columns.

Drift on raw text is expensive and hard to explain; drift on a handful of descriptors is
cheap, explainable ("answers got 40% longer") and reuses the numerical machinery. Missing
text (None, NaN or the empty string) gives NaN descriptors, counted as missing.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

DESCRIPTORS: tuple[str, ...] = ("length", "word_count", "non_letter_share", "oov_share")
# The reference vocabulary keeps the most frequent words only, so a profile stays bounded.
MAX_VOCABULARY = 100_000

_WORD = re.compile(r"\w+")


def is_missing_text(value: object) -> bool:
    """None, NaN and the empty string are missing."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def vocabulary(texts: Iterable[object]) -> frozenset[str]:
    """The lower-cased words of the reference texts, at most ``MAX_VOCABULARY`` of them."""
    counts: Counter[str] = Counter()
    for text in texts:
        if not is_missing_text(text):
            counts.update(_WORD.findall(str(text).lower()))
    return frozenset(word for word, _ in counts.most_common(MAX_VOCABULARY))


def profile_descriptors(texts: np.ndarray) -> tuple[frozenset[str], dict[str, np.ndarray]]:
    """The vocabulary and the reference descriptors of reference texts.

    The vocabulary comes from the even rows and the OOV share of the reference from the odd
    rows only: measured against its own vocabulary, every reference text would score 0 and
    any new word in production would look like drift. Split this way, the reference shows
    the natural rate of unseen words that a window of unchanged data also shows."""
    if len(texts) < 2:
        vocab = vocabulary(texts)
        return vocab, describe(texts, vocab)
    vocab = vocabulary(texts[0::2])
    described = describe(texts, vocab)
    described["oov_share"] = described["oov_share"][1::2]
    return vocab, described


def descriptor_name(column: str, descriptor: str) -> str:
    """The name of a descriptor column in results: ``"<column>:<descriptor>"``."""
    return f"{column}:{descriptor}"


def describe(texts: np.ndarray, vocab: frozenset[str]) -> dict[str, np.ndarray]:
    """Descriptor arrays (float64, NaN for missing text) for an array of texts."""
    n = len(texts)
    out = {name: np.full(n, np.nan) for name in DESCRIPTORS}
    length, words, non_letters, oov = (out[name] for name in DESCRIPTORS)
    for i, value in enumerate(texts):
        if is_missing_text(value):
            continue
        text = str(value)
        tokens = _WORD.findall(text.lower())
        length[i] = len(text)
        words[i] = len(tokens)
        non_letters[i] = sum(1 for ch in text if not ch.isalpha()) / len(text)
        oov[i] = sum(1 for t in tokens if t not in vocab) / len(tokens) if tokens else 0.0
    return out
