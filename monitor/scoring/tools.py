"""Agent metrics: the tools an answer calls (``tool-name``) and with what (``tool-args``).

The ``openai`` adapter keeps an answer's ``tool_calls`` as
``{"content": ..., "tool_calls": [{"name": ..., "arguments": {...}}, ...]}``. A case's
expected value is one call, ``{"name": "get_weather", "arguments": {"city": "Paris"}}``,
or a list of calls in order; ``tool-name`` also takes a name or a list of names.

``tool-name`` scores 1 when the answer calls exactly the expected tools, in order.
``tool-args`` scores 1 when, in addition, each call's arguments equal the expected ones
as JSON (decoded, so key order, spacing and ``1`` against ``1.0`` do not matter); with the
``schema`` option it instead checks that every call's arguments are valid against that
JSON Schema, and needs no expected arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from monitor.scoring.base import Option, PerCaseMetric, Task, register

_TEXT: frozenset[Task] = frozenset({"text"})


def tool_calls(prediction: Any) -> list[dict[str, Any]]:
    """The calls of an answer (none for a plain text answer)."""
    if isinstance(prediction, Mapping) and isinstance(prediction.get("tool_calls"), list):
        return [dict(c) for c in prediction["tool_calls"] if isinstance(c, Mapping)]
    return []


def expected_calls(expected: Any) -> list[dict[str, Any]]:
    """The expected calls: one call, a list of calls, a name or a list of names."""
    items = expected if isinstance(expected, list) else [expected]
    return [{"name": item} if isinstance(item, str) else dict(item) for item in items]


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


@register
class ToolName(PerCaseMetric):
    """1 when the answer calls exactly the expected tools, in order, else 0."""

    name = "tool-name"
    tasks = _TEXT
    binary = True

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        made = [c.get("name") for c in tool_calls(prediction)]
        wanted = [c.get("name") for c in expected_calls(expected)]
        return float(made == wanted)


@register
class ToolArgs(PerCaseMetric):
    """1 when the answer's calls have the expected names and arguments (JSON equality),
    or, with ``schema``, when every call's arguments are valid against it; else 0."""

    name = "tool-args"
    tasks = _TEXT
    binary = True
    options: ClassVar[Mapping[str, Option]] = {"schema": Option((dict,))}

    def check(self) -> None:
        import jsonschema

        schema = self.settings["schema"]
        self._validator = None
        if schema is not None:
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"option 'schema' of metric 'tool-args': {exc.message}") from None
            self._validator = cls(schema)

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        made = tool_calls(prediction)
        if self._validator is not None:
            return float(
                bool(made)
                and all(self._validator.is_valid(_arguments(c.get("arguments"))) for c in made)
            )
        wanted = expected_calls(expected)
        if len(made) != len(wanted):
            return 0.0
        return float(
            all(
                m.get("name") == w.get("name")
                and _arguments(m.get("arguments")) == _arguments(w.get("arguments", {}))
                for m, w in zip(made, wanted, strict=True)
            )
        )
