"""Loopback LLM judges speaking the OpenAI chat API, for the judge metrics' tests.

A ``Judge`` reads the prompt the way a person would read the packaged prompts: the text
after ``Answer to grade:`` or ``Answer:`` is the answer, the text after ``Context:`` the
context (each up to the next blank line); a prompt without an answer
(``context-relevance``) has its context graded as the answer. It answers from the JSON
schema the request carries as ``response_format``:

- a verdict scale of ``fail``/``pass``: ``pass`` when the answer contains ``GOOD``;
- an integer scale: the number of ``GOOD`` words, clipped to the scale;
- a list of labelled classes: the class named in the answer, else the worst;
- faithfulness (``claims``): each sentence of the answer is a claim, supported when the
  context contains it;
- pairwise (``A``/``B``/``tie``): the answer with more ``GOOD`` words (``mode =
  "position-biased"``: always ``A``, whichever answer comes first).

With ``logprobs`` asked for (``g-eval``), the answer carries chat-form token logprobs
(``token_logprobs``) unless ``logprobs = False``.

Behaviours: ``mode = "noisy"`` flips a binary verdict with probability ``error_rate``
(independently for every request, seeded by the prompt and how often it was asked, so the
flips are known and do not depend on the order concurrent requests arrive in);
``"malformed"`` answers text that is not JSON;
``"wrong-schema"`` answers JSON without the verdict; ``script("429", ...)`` makes the next
requests answer 429 with ``Retry-After: 0``. Every request is recorded, and each answer
reports ``usage`` (10 prompt and 5 completion tokens).
"""

from __future__ import annotations

import collections
import json
import math
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.servers import serve_in_thread

PROMPT_TOKENS = 10
COMPLETION_TOKENS = 5


def section(prompt: str, *heads: str) -> str:
    """The text after the first of ``heads`` found (``"Answer:"``), up to a blank line."""
    for head in heads:
        match = re.search(re.escape(head) + r"\n(.*?)(?:\n\n|\Z)", prompt, re.S)
        if match:
            return match.group(1).strip()
    return ""


@dataclass
class Judge:
    """The running judge: its URL, behaviour and what it received."""

    mode: str = "deterministic"
    error_rate: float = 0.0
    seed: int = 0
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: collections.deque[str] = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    flips: int = 0
    logprobs: bool = True
    asked: collections.Counter[str] = field(default_factory=collections.Counter)

    def script(self, *faults: str) -> None:
        self.faults.extend(faults)

    def answer(self, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if self.mode == "malformed":
            return "The answer looks fine to me. Verdict: pass"
        schema = body["response_format"]["json_schema"]["schema"]
        if self.mode == "wrong-schema":
            return json.dumps({"reasoning": "fine"})
        if schema["properties"].get("verdict", {}).get("enum") == ["A", "B", "tie"]:
            return json.dumps({"reasoning": "compared", "verdict": self._prefer(prompt)})
        # A prompt without an answer (context-relevance) has its context graded.
        answer = section(prompt, "Answer to grade:", "Answer:") or section(prompt, "Context:")
        if "claims" in schema["properties"]:
            context = section(prompt, "Context:")
            claims = [c.strip() for c in answer.split(".") if c.strip()]
            return json.dumps(
                {
                    "claims": [
                        {"claim": c, "reasoning": "checked", "supported": c in context}
                        for c in claims
                    ]
                }
            )
        scale = schema["properties"]["verdict"]["enum"]
        verdict = self._verdict(scale, answer, prompt)
        return json.dumps({"reasoning": "considered", "verdict": verdict})

    def _prefer(self, prompt: str) -> str:
        if self.mode == "position-biased":
            return "A"
        a = section(prompt, "Answer A:").count("GOOD")
        b = section(prompt, "Answer B:").count("GOOD")
        return "A" if a > b else "B" if b > a else "tie"

    def _verdict(self, scale: list[Any], answer: str, prompt: str) -> Any:
        if scale == ["fail", "pass"]:
            good = "GOOD" in answer
            with self.lock:
                self.asked[prompt] += 1
                draw = random.Random(f"{self.seed}:{self.asked[prompt]}:{prompt}").random()
                if self.mode == "noisy" and draw < self.error_rate:
                    good = not good
                    self.flips += 1
            return "pass" if good else "fail"
        if all(isinstance(v, int) for v in scale):
            return max(scale[0], min(scale[-1], answer.count("GOOD")))
        return next((v for v in reversed(scale) if v in answer), scale[0])


def token_logprobs(content: str) -> list[dict[str, Any]]:
    """Chat-form logprobs of ``content``, one token a character, where an integer
    verdict ``v`` has the alternatives ``v`` (0.6), ``v + 1`` capped at 5 (0.3) and a token
    off the scale (0.1)."""
    tokens = []
    verdict = re.search(r'"verdict": (\d)', content)
    at = verdict.start(1) if verdict else -1
    for i, char in enumerate(content):
        token: dict[str, Any] = {"token": char, "logprob": 0.0, "top_logprobs": []}
        if i == at:
            v = int(char)
            token["logprob"] = math.log(0.6)
            token["top_logprobs"] = [
                {"token": char, "logprob": math.log(0.6)},
                {"token": str(min(v + 1, 5)), "logprob": math.log(0.3)},
                {"token": "x", "logprob": math.log(0.1)},
            ]
        tokens.append(token)
    return tokens


def embedding(text: str) -> list[float]:
    """A deterministic toy embedding: the counts of each letter a-z, plus one."""
    lowered = text.lower()
    return [lowered.count(chr(ord("a") + i)) + 1.0 for i in range(26)]


def judge_app(judge: Judge) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        with judge.lock:
            judge.requests.append(body)
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(text)}
            for i, text in enumerate(body["input"])
        ]
        # Answered out of order: the adapter must sort by index.
        return JSONResponse({"data": data[::-1], "usage": {"prompt_tokens": PROMPT_TOKENS}})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        with judge.lock:
            judge.requests.append(body)
            fault = judge.faults.popleft() if judge.faults else None
        if fault == "429":
            return JSONResponse({"error": "slow down"}, 429, headers={"Retry-After": "0"})
        content = judge.answer(body)
        choice: dict[str, Any] = {"message": {"role": "assistant", "content": content}}
        if body.get("logprobs") and judge.logprobs:
            choice["logprobs"] = {"content": token_logprobs(content)}
        return JSONResponse(
            {
                "choices": [choice],
                "usage": {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                },
            }
        )

    return app


@contextmanager
def running_judge(**options: Any) -> Iterator[Judge]:
    """A ``Judge`` served on a free loopback port; ``url`` is its ``/v1`` base."""
    judge = Judge(**options)
    with serve_in_thread(judge_app(judge)) as url:
        judge.url = f"{url}/v1"
        yield judge


def agent_app(requests: list[dict[str, Any]]) -> FastAPI:
    """A loopback OpenAI-compatible agent: ``POST /v1/chat/completions`` answers the user's
    message with ``tool_calls`` (arguments as JSON text, the way the API sends them):

    - ``weather in CITY``: ``get_weather`` with ``{"unit": "celsius", "city": CITY}``;
    - ``search WORDS``: ``search`` with ``{"query": WORDS}``;
    - ``weather then search CITY``: both calls, in that order;
    - ``broken CITY``: ``get_weather`` with arguments that are not JSON;
    - anything else: plain text content, no tool call.
    """
    app = FastAPI()

    def call(name: str, arguments: str) -> dict[str, Any]:
        function = {"name": name, "arguments": arguments}
        return {"id": f"call_{name}", "type": "function", "function": function}

    def weather(city: str) -> dict[str, Any]:
        # Spaced and ordered unlike the expected value: compared as decoded JSON.
        return call("get_weather", '{ "unit" : "celsius", "city": ' + json.dumps(city) + " }")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        requests.append(body)
        text = body["messages"][-1]["content"]
        verb, _, rest = text.partition(" ")
        calls: list[dict[str, Any]] = []
        if text.startswith("weather in "):
            calls = [weather(text.removeprefix("weather in "))]
        elif text.startswith("weather then search "):
            city = text.removeprefix("weather then search ")
            calls = [weather(city), call("search", json.dumps({"query": city}))]
        elif verb == "search":
            calls = [call("search", json.dumps({"query": rest}))]
        elif verb == "broken":
            calls = [call("get_weather", f"city={rest}")]
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else "Hello!"}
        if calls:
            message["tool_calls"] = calls
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
        return JSONResponse({"choices": [{"message": message}], "usage": usage})

    return app


@contextmanager
def running_agent() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``agent_app`` on a free loopback port: its ``/v1`` base and the requests it got."""
    requests: list[dict[str, Any]] = []
    with serve_in_thread(agent_app(requests)) as url:
        yield f"{url}/v1", requests
