"""``[[models]]``: the deployed endpoints to evaluate, one config class per adapter."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator

from monitor.config._base import Duration, Name, Section, http_url

Role = Literal["production", "candidate", "shadow", "previous"]


class PriceConfig(Section):
    """``price`` of a model: what its tokens cost, per ``per_tokens`` tokens. A model
    without a price has an unknown cost, never a cost of zero."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)
    per_tokens: int = Field(1_000_000, ge=1)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class _ModelBase(Section):
    name: Name
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=30)
    concurrency: int = Field(4, ge=1, le=1024)
    role: Role = "production"
    price: PriceConfig | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class HttpModelConfig(_ModelBase):
    """A model behind any JSON API. ``body`` is a template: a string ``"{{field}}"`` is
    replaced by that case field's value (any JSON type); without ``body`` the case's input
    fields are sent as one JSON object. ``prediction`` is a JMESPath into the response."""

    adapter: Literal["http"]
    method: Literal["POST", "PUT", "GET"] = "POST"
    params: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    prediction: str = "prediction"

    @field_validator("prediction")
    @classmethod
    def _jmespath(cls, value: str) -> str:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath expression: {exc}") from None
        return value


ModelConfig = Annotated[HttpModelConfig, Field(discriminator="adapter")]
ADAPTERS = ("http",)
