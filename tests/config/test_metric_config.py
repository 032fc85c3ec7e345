"""The ``metrics`` key of a suite: names, ``@k`` shorthand and option tables, with errors
that name the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError


def _config(tmp_path: Path, task: str, metrics: list[Any], **suite: Any) -> dict[str, Any]:
    (tmp_path / "cases.jsonl").write_text('{"id": "1", "expected": "a"}\n')
    return {
        "models": [{"name": "m", "adapter": "http", "url": "http://127.0.0.1:1/p"}],
        "suites": [
            {
                "name": "s",
                "dataset": "cases.jsonl",
                "task": task,
                "metrics": metrics,
                "models": ["m"],
                **suite,
            }
        ],
    }


def test_names_shorthand_and_tables_build_labelled_metrics(tmp_path: Path) -> None:
    raw = _config(tmp_path, "classification", ["accuracy", {"name": "f1", "average": "weighted"}])
    suite = parse_config(raw, base_dir=tmp_path).suites[0]
    assert [m.label for m in suite.build_metrics()] == ["accuracy", "f1[average=weighted]"]
    ranking = _config(tmp_path, "ranking", ["ndcg@10", "mrr", {"name": "recall@k", "k": 5}])
    labels = [m.label for m in parse_config(ranking, base_dir=tmp_path).suites[0].build_metrics()]
    assert labels == ["ndcg@10", "mrr", "recall@5"]


@pytest.mark.parametrize(
    ("task", "metrics", "suite", "message"),
    [
        pytest.param(
            "classification",
            ["accuracy", {"name": "f1", "average": "sample"}],
            {},
            "suites[0].metrics[1]: option 'average' of metric 'f1': expected one of",
            id="bad-option",
        ),
        pytest.param(
            "text", ["rouge_l"], {}, "suites[0].metrics[0]: unknown metric 'rouge_l'", id="name"
        ),
        pytest.param(
            "text",
            [{"name": "f1", "average": "macro"}],
            {},
            "suites[0].metrics[0]: metric 'f1' does not apply to task 'text'",
            id="task",
        ),
        pytest.param(
            "text",
            ["exact-match"],
            {"reducer": "at_least_k", "repeats": 3},
            "needs 'at_least'",
            id="at-least",
        ),
        pytest.param(
            "text", ["exact-match"], {"stratify": "segment"}, "only applies with", id="stratify"
        ),
        pytest.param("text", ["exact-match"], {"sample": 0}, "suites[0].sample", id="sample"),
        pytest.param(
            "text", ["exact-match", "exact-match"], {}, "listed twice", id="duplicate-metric"
        ),
    ],
)
def test_bad_suites_name_the_key_path(
    tmp_path: Path, task: str, metrics: list[Any], suite: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(tmp_path, task, metrics, **suite), base_dir=tmp_path)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_metric_names_are_a_public_contract() -> None:
    """Renaming a metric is BREAKING (stored runs, dashboards and alerts use the names)."""
    from monitor.scoring import metric_names

    assert metric_names() == [
        "accuracy",
        "answer-relevance",
        "bleu",
        "chrf",
        "contains",
        "context-relevance",
        "exact-match",
        "f1",
        "f1-score",
        "faithfulness",
        "g-eval",
        "json-schema",
        "json-valid",
        "log-loss",
        "mae",
        "mape",
        "mrr",
        "ndcg@k",
        "pairwise",
        "precision",
        "precision@k",
        "r2",
        "recall",
        "recall@k",
        "regex",
        "rmse",
        "roc-auc",
        "rouge-1",
        "rouge-2",
        "rouge-l",
        "rouge-lsum",
        "rubric",
        "semantic-similarity",
        "tool-args",
        "tool-name",
    ]
