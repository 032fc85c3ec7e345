"""A word-level diff of a case's baseline and new answer, for the gate's reports.

:func:`difflib.SequenceMatcher` (the standard library's) matches the two answers word by
word; long stretches that did not change shrink to their first and last few words around
an ellipsis, and the whole diff stops after :data:`WORD_LIMIT` words, so one long answer
cannot crowd out the rest of a pull-request comment. Words are split at whitespace and
shown joined by single spaces: the diff is about wording, not layout. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from monitor.gate import formatting as fmt

__all__ = ["CONTEXT", "WORD_LIMIT", "Piece", "markdown_diff", "word_diff"]

# Unchanged words kept on each side of a change.
CONTEXT = 5
# Words shown per diff, all kinds together.
WORD_LIMIT = 120

Kind = Literal["same", "removed", "added", "gap"]


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of words: ``same`` in both answers, ``removed`` from the baseline's,
    ``added`` in the new one, or a ``gap`` standing for unchanged (or cut) words."""

    kind: Kind
    text: str


def word_diff(baseline: str, new: str, *, context: int = CONTEXT) -> list[Piece]:
    """The pieces that turn ``baseline`` into ``new``, word by word."""
    old, now = baseline.split(), new.split()
    matcher = difflib.SequenceMatcher(None, old, now, autojunk=False)
    pieces: list[Piece] = []
    opcodes = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            pieces += _context(old[i1:i2], context, first=n == 0, last=n == len(opcodes) - 1)
            continue
        if tag in ("replace", "delete"):
            pieces.append(Piece("removed", " ".join(old[i1:i2])))
        if tag in ("replace", "insert"):
            pieces.append(Piece("added", " ".join(now[j1:j2])))
    return _bounded(pieces)


def markdown_diff(baseline: str, new: str) -> str:
    """The diff as one line of GitHub- and GitLab-flavoured Markdown: ``~~removed~~``,
    ``**added**``, ``...`` for a gap, every word escaped (so an answer cannot inject
    markup). Marks are set off by spaces, which keeps them valid around punctuation."""
    shown = []
    for piece in word_diff(baseline, new):
        text = fmt.escape(piece.text)
        if piece.kind == "removed":
            shown.append(f"~~{text}~~")
        elif piece.kind == "added":
            shown.append(f"**{text}**")
        else:
            shown.append("..." if piece.kind == "gap" else text)
    return " ".join(shown)


def _context(words: list[str], context: int, *, first: bool, last: bool) -> list[Piece]:
    """An unchanged stretch: kept when short, else only the words next to a change."""
    head = [] if first else words[:context]
    tail = [] if last else words[-context:]
    if len(words) <= len(head) + len(tail) + 1:
        return [Piece("same", " ".join(words))]
    pieces = [Piece("same", " ".join(head))] if head else []
    pieces.append(Piece("gap", ""))
    return pieces + ([Piece("same", " ".join(tail))] if tail else [])


def _bounded(pieces: list[Piece]) -> list[Piece]:
    """At most :data:`WORD_LIMIT` words; a cut piece ends the diff with a gap."""
    kept: list[Piece] = []
    left = WORD_LIMIT
    for piece in pieces:
        words = piece.text.split()
        if len(words) > left:
            if left:
                kept.append(Piece(piece.kind, " ".join(words[:left])))
            kept.append(Piece("gap", ""))
            break
        kept.append(piece)
        left -= len(words)
    return kept
