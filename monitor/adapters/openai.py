"""OpenAI-compatible servers: ``/chat/completions`` and ``/completions``.

vLLM, TGI, Ollama, llama.cpp's server and the hosted APIs all speak this dialect. The
prompt is a template filled from the case's fields; the API key is sent as a bearer
token and, like every header, never appears in a message. Token counts come from the
answer's ``usage`` when the server reports it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

from monitor.adapters.base import Adapter, Prediction, join_url
from monitor.adapters.http import render
from monitor.adapters.transport import Reply
from monitor.config import OpenAIModelConfig
from monitor.errors import AdapterError
from monitor.records import Case

TOP_LOGPROBS = 5
"""Alternatives asked for at each token of a judge's answer (``g-eval``)."""


class OpenAIAdapter(Adapter):
    """An OpenAI-compatible completion endpoint: ``adapter = "openai"``."""

    config: OpenAIModelConfig

    def _headers(self) -> dict[str, str]:
        key = self.config.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    @property
    def url(self) -> str:
        path = "chat/completions" if self.config.endpoint == "chat" else "completions"
        return join_url(self.config.url, path)

    def request_body(self, case: Case) -> dict[str, Any]:
        """The JSON body for ``case``: options the config leaves out are not sent, so the
        server's own defaults apply."""
        config = self.config
        prompt = render(config.prompt, case.inputs)
        body: dict[str, Any] = {"model": config.model}
        if config.endpoint == "chat":
            messages = [{"role": "user", "content": prompt}]
            if config.system_prompt is not None:
                system = render(config.system_prompt, case.inputs)
                messages.insert(0, {"role": "system", "content": system})
            body["messages"] = messages
        else:
            body["prompt"] = prompt
        self._add_options(body)
        return body

    def _add_options(self, body: dict[str, Any]) -> None:
        config = self.config
        options = {
            "temperature": config.temperature,
            "seed": config.seed,
            "max_tokens": config.max_tokens,
        }
        body.update({k: v for k, v in options.items() if v is not None})
        body.update(config.extra_body)

    def judge_body(
        self, prompt: str, schema: dict[str, Any], *, logprobs: bool = False
    ) -> dict[str, Any]:
        """The JSON body asking ``prompt`` as a judge: on ``/chat/completions`` with the
        answer's JSON schema as ``response_format`` (strict structured output), which
        vLLM, llama.cpp, Ollama and the hosted APIs honour; ``/completions`` has no such
        mode, so there the answer is only validated."""
        config = self.config
        # The judge's own ``prompt`` template is not applied: the metric's prompt file is
        # the whole question. Its ``system_prompt`` is sent as written.
        body: dict[str, Any] = {"model": config.model}
        if config.endpoint == "chat":
            messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
            if config.system_prompt is not None:
                messages.insert(0, {"role": "system", "content": config.system_prompt})
            body["messages"] = messages
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "strict": True, "schema": schema},
            }
            if logprobs:
                body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        else:
            body["prompt"] = prompt
            if logprobs:
                body["logprobs"] = TOP_LOGPROBS
        self._add_options(body)
        return body

    async def judge(
        self, prompt: str, schema: dict[str, Any], *, logprobs: bool = False
    ) -> Prediction:
        body = self.judge_body(prompt, schema, logprobs=logprobs)
        reply = await self._send("POST", self.url, json=body)
        prediction = self._prediction(reply)
        if logprobs:
            return replace(prediction, scores=_logprobs(reply.body))
        return prediction

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], Prediction]:
        """``POST {url}/embeddings`` with every text as ``input``."""
        url = join_url(self.config.url, "embeddings")
        reply = await self._send("POST", url, json={"model": self.config.model, "input": texts})
        try:
            data = sorted(reply.body["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (KeyError, TypeError, ValueError):
            raise AdapterError("bad_response", "the answer has no data[].embedding") from None
        if len(vectors) != len(texts):
            raise AdapterError("bad_response", f"{len(vectors)} embeddings for {len(texts)} texts")
        usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
        prompt = _count(usage, "prompt_tokens")
        cost = Prediction(
            None,
            reply.latency_seconds,
            prompt_tokens=prompt,
            completion_tokens=None if prompt is None else 0,
        )
        return vectors, cost

    async def _predict(self, case: Case) -> Prediction:
        reply = await self._send("POST", self.url, json=self.request_body(case))
        return self._prediction(reply)

    def _prediction(self, reply: Reply) -> Prediction:
        calls = _tool_calls(reply.body) if self.config.endpoint == "chat" else None
        text: Any = (
            self._text(reply.body) if calls is None else _answer_with_calls(reply.body, calls)
        )
        usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
        return Prediction(
            text,
            reply.latency_seconds,
            prompt_tokens=_count(usage, "prompt_tokens"),
            completion_tokens=_count(usage, "completion_tokens"),
        )

    def _text(self, answer: Any) -> str:
        """The first choice's text, or ``bad_response`` naming what is missing."""
        try:
            choice = answer["choices"][0]
            text = (
                choice["message"]["content"] if self.config.endpoint == "chat" else choice["text"]
            )
        except (KeyError, IndexError, TypeError):
            where = (
                "choices[0].message.content"
                if self.config.endpoint == "chat"
                else "choices[0].text"
            )
            raise AdapterError("bad_response", f"the answer has no {where}") from None
        if not isinstance(text, str):
            raise AdapterError(
                "bad_response", f"the answer's text is {type(text).__name__}, not a string"
            )
        return text


def _tool_calls(answer: Any) -> list[dict[str, Any]] | None:
    """The first choice's ``tool_calls`` as ``[{"name", "arguments"}, ...]`` (arguments
    decoded from their JSON text when they are JSON; kept as text otherwise, for
    ``tool-args`` to refuse), or ``None`` when the answer calls no tool."""
    try:
        found = answer["choices"][0]["message"].get("tool_calls")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(found, list) or not found:
        return None
    calls = []
    for call in found:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise AdapterError("bad_response", "a tool call of the answer has no function name")
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            with contextlib.suppress(json.JSONDecodeError):  # kept as text: tool-args says 0
                arguments = json.loads(arguments)
        calls.append({"name": function["name"], "arguments": arguments})
    return calls


def _answer_with_calls(answer: Any, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """An answer that calls tools: its text (may be ``None``) and the calls."""
    content = answer["choices"][0]["message"].get("content")
    return {"content": content if isinstance(content, str) else None, "tool_calls": calls}


def _logprobs(answer: Any) -> list[dict[str, Any]] | None:
    """The first choice's tokens with their top alternatives, as
    ``[{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}, ...]`` (the
    chat form; the completions form is converted), or ``None`` when absent."""
    try:
        found = answer["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(found, dict):
        return None
    content = found.get("content")
    if isinstance(content, list):
        return [t for t in content if isinstance(t, dict)]
    tokens, tops = found.get("tokens"), found.get("top_logprobs")
    if isinstance(tokens, list) and isinstance(tops, list) and len(tokens) == len(tops):
        return [
            {
                "token": token,
                "top_logprobs": [{"token": t, "logprob": p} for t, p in (top or {}).items()],
            }
            for token, top in zip(tokens, tops, strict=True)
        ]
    return None


def _count(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
