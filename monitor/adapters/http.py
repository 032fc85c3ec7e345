"""The generic JSON adapter: a request body templated from the case, a JMESPath answer."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jmespath

from monitor.adapters.base import Adapter, Prediction
from monitor.adapters.observer import NO_OBSERVER, RequestObserver
from monitor.adapters.transport import Timing
from monitor.config import HttpModelConfig
from monitor.errors import AdapterError
from monitor.records import Case

_WHOLE_FIELD = re.compile(r"^\{\{\s*([^{}\s]+)\s*\}\}$")
_FIELD = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")


def render(template: Any, fields: dict[str, Any]) -> Any:
    """Fill ``template`` from ``fields``.

    A string that is exactly ``"{{name}}"`` becomes the field's value with its JSON type
    (a list of features stays a list); ``{{name}}`` inside a longer string is replaced by
    the field's text. Raises ``KeyError`` naming a field the case does not have.
    """
    if isinstance(template, dict):
        return {k: render(v, fields) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, fields) for v in template]
    if not isinstance(template, str):
        return template
    whole = _WHOLE_FIELD.match(template)
    if whole:
        return fields[whole.group(1)]
    return _FIELD.sub(lambda m: str(fields[m.group(1)]), template)


def search(path: jmespath.parser.ParsedResult, answer: Any, what: str) -> Any:
    """``path`` applied to ``answer``; ``bad_response`` when it finds nothing."""
    value = path.search(answer)
    if value is None:
        raise AdapterError("bad_response", f"the answer has no {what} at {path.expression!r}")
    return value


class HttpAdapter(Adapter):
    """Any JSON API: ``adapter = "http"``."""

    config: HttpModelConfig

    def __init__(
        self,
        config: HttpModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timing: Timing | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        super().__init__(config, transport=transport, timing=timing, observer=observer)
        self._prediction = jmespath.compile(config.prediction)
        self._scores = jmespath.compile(config.scores) if config.scores else None
        self._usage = (
            (jmespath.compile(config.prompt_tokens), jmespath.compile(config.completion_tokens))
            if config.prompt_tokens and config.completion_tokens
            else None
        )

    async def _predict(self, case: Case) -> Prediction:
        config = self.config
        params = render(config.params, case.inputs)
        if config.method == "GET":
            reply = await self._send("GET", config.url, params=params)
        else:
            body = case.inputs if config.body is None else render(config.body, case.inputs)
            reply = await self._send(config.method, config.url, params=params, json=body)
        value = search(self._prediction, reply.body, "prediction")
        scores = None if self._scores is None else search(self._scores, reply.body, "scores")
        prompt = completion = None
        if self._usage is not None:
            # Usage the answer does not report is unknown, not an error and not 0.
            prompt, completion = (token_count(path.search(reply.body)) for path in self._usage)
        return Prediction(
            value,
            reply.latency_seconds,
            scores=scores,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )


def token_count(value: Any) -> int | None:
    """``value`` if it is a token count (a non-negative integer), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
