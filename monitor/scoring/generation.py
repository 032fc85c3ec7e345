"""Generation metrics: ROUGE through ``rouge-score``, BLEU and chrF through ``sacrebleu``.

ROUGE is the mean of per-case F-measures (the best over a case's references), with no
random aggregation; stemming is off unless ``stemming = true``. BLEU and chrF are corpus
metrics exactly as sacrebleu computes them, reported on its 0-100 scale with the signature
sacrebleu prints for the same references (``nrefs:var`` when cases have different numbers);
their bootstrap sums sacrebleu's own per-sentence statistics, as its paired bootstrap does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.scoring.base import CorpusMetric, Option, PerCaseMetric, Task, register

if TYPE_CHECKING:
    from monitor.scoring.base import Indices, Statistic

_TEXT: frozenset[Task] = frozenset({"text"})


def references(expected: Any) -> list[str]:
    """A case's reference texts: one string, or a list of them."""
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, Sequence) and expected:
        return [str(e) for e in expected]
    return ["" if expected is None else str(expected)]


class _Rouge(PerCaseMetric):
    tasks = _TEXT
    cpu_bound = True
    rouge_type: ClassVar[str]
    options: ClassVar[Mapping[str, Option]] = {"stemming": Option((bool,), False)}

    def check(self) -> None:
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(
            [self.rouge_type], use_stemmer=self.settings["stemming"]
        )

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        text = "" if prediction is None else str(prediction)
        result = self._scorer.score_multi(references(expected), text)
        return float(result[self.rouge_type].fmeasure)


@register
class Rouge1(_Rouge):
    """ROUGE-1 F-measure (unigram overlap)."""

    name = "rouge-1"
    rouge_type = "rouge1"


@register
class Rouge2(_Rouge):
    """ROUGE-2 F-measure (bigram overlap)."""

    name = "rouge-2"
    rouge_type = "rouge2"


@register
class RougeL(_Rouge):
    """ROUGE-L F-measure (longest common subsequence)."""

    name = "rouge-l"
    rouge_type = "rougeL"


@register
class RougeLsum(_Rouge):
    """ROUGE-Lsum F-measure (LCS over newline-separated sentences)."""

    name = "rouge-lsum"
    rouge_type = "rougeLsum"


class _Sacrebleu(CorpusMetric):
    tasks = _TEXT
    cpu_bound = True

    def _metric(self) -> Any:
        raise NotImplementedError

    def statistic(
        self, predictions: Sequence[Any], expected: Sequence[Any], scores: Sequence[Any] | None
    ) -> Statistic:
        import numpy as np

        metric = self._metric()
        hypotheses = ["" if p is None else str(p) for p in predictions]
        refs = [references(e) for e in expected]
        width = max(len(r) for r in refs)
        # sacrebleu takes one stream per reference position; a case with fewer references
        # has None in the streams past its last, which sacrebleu skips and then signs
        # "nrefs:var", as it does for such test sets itself.
        streams: list[list[str | None]] = [
            [r[i] if i < len(r) else None for r in refs] for i in range(width)
        ]
        # The per-sentence statistics and the score from summed statistics are what
        # sacrebleu's own corpus_score and paired bootstrap use.
        stats = np.array(metric._extract_corpus_statistics(hypotheses, streams), dtype=float)

        def stat(idx: Indices) -> float:
            return float(metric._compute_score_from_stats(stats[idx].sum(axis=0).tolist()).score)

        self._signature = str(metric.get_signature())
        return stat

    def detail(self) -> str | None:
        return getattr(self, "_signature", None)


@register
class Bleu(_Sacrebleu):
    """Corpus BLEU (sacrebleu defaults: 13a tokenizer, exponential smoothing)."""

    name = "bleu"
    scale = "points"

    def _metric(self) -> Any:
        from sacrebleu.metrics.bleu import BLEU

        return BLEU()


@register
class Chrf(_Sacrebleu):
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2)."""

    name = "chrf"
    scale = "points"

    def _metric(self) -> Any:
        from sacrebleu.metrics.chrf import CHRF

        return CHRF()
