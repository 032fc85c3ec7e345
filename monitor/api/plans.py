"""What a ``POST /v1/runs`` body asks for, turned into model configurations to run.

A model entry is either a configured model (by name; an ``endpoint`` overrides its URL)
or an unknown id with an ``endpoint``, which runs with the ``openai`` adapter and sends
``model = id``. Every endpoint must pass the ``EndpointGuard``. An ad-hoc model takes its
prompt settings (prompt, system prompt, endpoint kind, sampling options, timeout,
concurrency, retry, rate limit) from the suite's first configured ``openai`` model, if
any, never its headers, API key or price: those belong to another endpoint.

Problems are ``field_error``\\ s naming the body field (``models[1].endpoint``), so the
caller answers 422 before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.api.endpoints import EndpointGuard, EndpointRefused
from monitor.api.problems import field_error
from monitor.config import AnyModelConfig, OpenAIModelConfig, SuiteConfig

__all__ = ["ModelEntry", "ModelPlan", "native_name", "plan_models"]

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One entry of the request's ``models`` list, as sent."""

    id: str
    endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """A model entry resolved: the configuration its run uses and what the request keeps
    of it (no secrets: the id as sent, the run's model name, the normalised endpoint)."""

    id: str
    config: AnyModelConfig
    endpoint: str | None

    def stored(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.config.name, "endpoint": self.endpoint}


def native_name(model_id: str) -> str:
    """The name an ad-hoc model's runs are stored under: ``model_id`` with characters a
    model name cannot hold replaced by ``-`` (``meta/llama-3`` -> ``meta-llama-3``)."""
    name = _NOT_IN_NAME.sub("-", model_id).lstrip("-_.")[:64].rstrip("-")
    return name or "model"


def plan_models(
    entries: Sequence[ModelEntry],
    suite: SuiteConfig,
    models: Mapping[str, AnyModelConfig],
    guard: EndpointGuard,
) -> list[ModelPlan]:
    """Resolve every entry, or raise the first problem as a ``RequestValidationError``."""
    plans: list[ModelPlan] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        plan = _plan(index, entry, suite, models, guard)
        name = plan.config.name
        if name in seen:
            raise field_error(
                ("body", "models", index, "id"),
                f"runs as model {name!r}, like models[{seen[name]}]: list each model once",
            )
        seen[name] = index
        plans.append(plan)
    return plans


def _plan(
    index: int,
    entry: ModelEntry,
    suite: SuiteConfig,
    models: Mapping[str, AnyModelConfig],
    guard: EndpointGuard,
) -> ModelPlan:
    configured = models.get(entry.id)
    endpoint = None if entry.endpoint is None else _checked(index, entry.endpoint, guard)
    if configured is not None:
        config = configured if endpoint is None else configured.model_copy(update={"url": endpoint})
        return ModelPlan(entry.id, config, endpoint)
    if endpoint is None:
        raise field_error(
            ("body", "models", index, "id"),
            f"unknown model {entry.id!r}: not in the configuration, and no endpoint given",
        )
    name = native_name(entry.id)
    if name in models:
        raise field_error(
            ("body", "models", index, "id"),
            f"would be stored as {name!r}, the name of a configured model; use that name",
        )
    return ModelPlan(entry.id, _adhoc(name, entry.id, endpoint, suite, models), endpoint)


def _checked(index: int, endpoint: str, guard: EndpointGuard) -> str:
    try:
        return guard.check(endpoint)
    except EndpointRefused as exc:
        raise field_error(("body", "models", index, "endpoint"), str(exc)) from None


def _adhoc(
    name: str,
    model_id: str,
    url: str,
    suite: SuiteConfig,
    models: Mapping[str, AnyModelConfig],
) -> OpenAIModelConfig:
    template = next(
        (m for n in suite.models if isinstance(m := models.get(n), OpenAIModelConfig)), None
    )
    if template is None:
        return OpenAIModelConfig(
            name=name, adapter="openai", url=url, model=model_id, role="candidate"
        )
    return template.model_copy(
        update={
            "name": name,
            "url": url,
            "model": model_id,
            "role": "candidate",
            "headers": {},
            "api_key": None,
            "price": None,
        }
    )
