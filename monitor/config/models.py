"""``[[models]]``: the deployed endpoints to evaluate, one config class per adapter.

Every adapter shares the transport keys of ``_ModelBase`` (URL, headers, timeout,
concurrency, ``retry``, ``rate_limit``, ``http_client``, ``tls_verify``, ``ca_bundle``); the
``adapter`` key picks the
class, so a key that only one protocol understands is an error anywhere else.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from monitor.config._base import (
    Duration,
    Name,
    PositiveDuration,
    Section,
    http_url,
    resolve_path,
)
from monitor.durations import parse_duration

Role = Literal["production", "candidate", "shadow", "previous", "judge", "embedder"]
"""What a model is for. A ``judge`` scores other models' answers for judge metrics
(``rubric``, ``faithfulness``, ...) and an ``embedder`` embeds them for
``semantic-similarity``; their tokens and cost are reported apart."""

HttpClientName = Literal["aiohttp", "httpx"]
HTTP_CLIENTS: tuple[HttpClientName, ...] = ("aiohttp", "httpx")

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\S+)\s*$")


class PriceConfig(Section):
    """``price`` of a model: what its tokens cost, per ``per_tokens`` tokens. A model
    without a price has an unknown cost, never a cost of zero."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)
    per_tokens: int = Field(1_000_000, ge=1)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class RetryConfig(Section):
    """``retry``: how often a failed request (429, 5xx, connection error, timeout) is tried
    again. ``attempts`` retries at most, never unbounded; the wait before retry ``n`` is
    drawn uniformly from ``[0, min(max_backoff, backoff * 2**n)]`` (full jitter)."""

    attempts: int = Field(3, ge=0, le=10)
    backoff: Duration = timedelta(milliseconds=200)
    max_backoff: Duration = timedelta(seconds=20)

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff must be at least backoff")
        return self


class RateLimit(Section):
    """``rate_limit = "20/s"``: at most ``count`` requests per ``period`` (a token bucket
    holding up to ``count`` tokens, so a burst never exceeds one period's worth)."""

    count: float = Field(gt=0)
    period: timedelta

    @property
    def per_second(self) -> float:
        return self.count / self.period.total_seconds()


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_header_value(what: str, value: SecretStr) -> None:
    """``ValueError`` when ``value`` cannot travel in an HTTP header (a character outside
    printable ASCII, a line break). The message names ``what``, never the value: headers
    carry credentials."""
    if not _HEADER_VALUE.fullmatch(value.get_secret_value()):
        raise ValueError(
            f"{what} holds a character an HTTP header cannot carry"
            " (only printable ASCII; no line breaks)"
        )


def parse_rate(value: object) -> object:
    """``"20/s"``, ``"600/m"`` or ``"5/250ms"`` into a ``RateLimit``; other values pass on."""
    if not isinstance(value, str):
        return value
    match = _RATE.match(value)
    expected = "expected a rate like '20/s', '600/m' or '5/250ms'"
    if not match:
        raise ValueError(expected)
    unit = match.group(2)
    try:
        period = parse_duration(unit if unit[0].isdigit() else f"1{unit}")
    except ValueError:
        raise ValueError(expected) from None
    if period <= timedelta(0) or float(match.group(1)) <= 0:
        raise ValueError(expected)
    return {"count": float(match.group(1)), "period": period}


_VERSION = "{version}"


class RegistryConfig(Section):
    """``registry = { kind = "mlflow", url = "...", name = "churn", alias = "champion" }``:
    the model's version is the one this registered model's ``alias`` names, looked up when
    each run starts and stored with it. A ``{version}`` in the model's ``url`` is replaced
    by that version. ``token_env`` names the environment variable holding a bearer token
    for the registry (read when the registry is called; never logged)."""

    kind: Literal["mlflow"]
    url: str
    name: str = Field(min_length=1, max_length=256)
    alias: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: PositiveDuration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class _ModelBase(Section):
    name: Name
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: PositiveDuration = timedelta(seconds=30)
    concurrency: int = Field(4, ge=1, le=1024)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimit | None = None
    role: Role = "production"
    price: PriceConfig | None = None
    # httpx's API over "aiohttp" (httpx-aiohttp: aiohttp's pool and parser) or over
    # "httpx" (its own transport, httpcore).
    http_client: HttpClientName = "aiohttp"
    # Verify the server's certificate (against ``ca_bundle`` when set, else the system's).
    tls_verify: bool = True
    ca_bundle: Path | None = None
    # The model registry whose alias names the model's version (and maybe its URL).
    registry: RegistryConfig | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _version_in_url(self) -> Self:
        if _VERSION in self.url and self.registry is None:
            raise ValueError(
                "url holds '{version}' but the model has no registry to take the version from"
            )
        return self

    def with_version(self, version: str) -> Self:
        """This model as its registry's ``version`` serves it: ``{version}`` in the URL
        replaced (the version is percent-encoded, so it cannot change the URL's shape)."""
        if _VERSION not in self.url:
            return self
        from urllib.parse import quote

        return self.model_copy(update={"url": self.url.replace(_VERSION, quote(version, safe=""))})

    @field_validator("http_client", mode="before")
    @classmethod
    def _http_client(cls, value: object) -> object:
        if value == "fast":
            raise ValueError(
                "'fast' was removed with the hand-written HTTP/1.1 client;"
                f" expected one of: {', '.join(map(repr, HTTP_CLIENTS))}"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = resolve_path(value, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"no readable file at '{path}'")
        return path

    @model_validator(mode="after")
    def _tls(self) -> Self:
        if self.ca_bundle is not None and not self.tls_verify:
            raise ValueError(
                "ca_bundle is set but tls_verify is false: certificates would not be checked"
            )
        return self

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        return parse_rate(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not an HTTP token")
            check_header_value(f"header {name!r}", secret)
        return value


def _check_jmespath(value: str | None) -> str | None:
    import jmespath
    from jmespath.exceptions import JMESPathError

    if value is None:
        return None
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression: {exc}") from None
    return value


class HttpModelConfig(_ModelBase):
    """A model behind any JSON API. ``body`` is a template: a string ``"{{field}}"`` is
    replaced by that case field's value (any JSON type); without ``body`` the case's input
    fields are sent as one JSON object. ``prediction`` is a JMESPath into the response, and
    ``scores`` an optional one to the model's score or class probabilities.
    ``prompt_tokens`` and ``completion_tokens`` (both or neither) are JMESPaths to the
    usage the endpoint reports, for tokens and cost."""

    adapter: Literal["http"]
    method: Literal["POST", "PUT", "GET"] = "POST"
    params: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    prediction: str = "prediction"
    scores: str | None = None
    prompt_tokens: str | None = None
    completion_tokens: str | None = None

    _paths = field_validator("prediction", "scores", "prompt_tokens", "completion_tokens")(
        _check_jmespath
    )

    @model_validator(mode="after")
    def _usage_pair(self) -> HttpModelConfig:
        if (self.prompt_tokens is None) != (self.completion_tokens is None):
            raise ValueError(
                "prompt_tokens and completion_tokens go together: set both JMESPaths or neither"
            )
        return self


class OpenAIModelConfig(_ModelBase):
    """An OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp, hosted APIs). ``url`` is
    the base URL (``http://host:8000/v1``); ``endpoint`` picks ``/chat/completions`` or
    ``/completions``. ``prompt`` is a template filled from the case's fields."""

    adapter: Literal["openai"]
    model: str = Field(min_length=1)
    endpoint: Literal["chat", "completions"] = "chat"
    api_key: SecretStr | None = None
    prompt: str = "{{input}}"
    system_prompt: str | None = None
    temperature: float | None = Field(0.0, ge=0, le=2)
    seed: int | None = None
    max_tokens: int | None = Field(None, ge=1)
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_header_value("api_key", value)
        return value


class _BatchingBase(_ModelBase):
    batch_size: int = Field(32, ge=1, le=10_000)
    # How long a partly filled batch waits for more cases before it is sent anyway.
    batch_linger: Duration = timedelta(milliseconds=5)
    scores: str | None = None

    _paths = field_validator("scores")(_check_jmespath)


class MlflowModelConfig(_BatchingBase):
    """An MLflow scoring server: ``POST {url}/invocations`` with up to ``batch_size`` cases
    per request, as a ``dataframe_split`` (one column per field in ``columns``) or as
    ``inputs`` (each row the value of the single column, or an object of the columns).
    ``predictions`` is a JMESPath to the list of answers (one per row); ``prediction`` and
    ``scores`` are optional JMESPaths applied to each answer."""

    adapter: Literal["mlflow"]
    format: Literal["dataframe_split", "inputs"] = "dataframe_split"
    columns: tuple[str, ...] = Field(min_length=1)
    predictions: str = "predictions"
    prediction: str | None = None

    _lists = field_validator("predictions", "prediction")(_check_jmespath)


class TensorConfig(Section):
    """One input tensor of a ``kserve-v2`` model: filled from case field ``field``; its
    per-case ``shape`` (without the batch dimension) is inferred from the value when
    omitted."""

    name: str = Field(min_length=1)
    field: str = Field(min_length=1)
    datatype: Literal[
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BYTES",
    ] = "FP32"  # fmt: skip
    shape: tuple[int, ...] | None = None


class KServeModelConfig(_BatchingBase):
    """A server speaking the Open Inference Protocol v2 (KServe, Triton, MLServer):
    ``POST {url}/v2/models/{model}/infer`` with up to ``batch_size`` cases per request,
    stacked along a leading batch dimension. ``output`` names the tensor holding the
    prediction (default: the first); ``scores_output`` one holding scores."""

    adapter: Literal["kserve-v2"]
    model: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    version: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    inputs: tuple[TensorConfig, ...] = Field(min_length=1)
    output: str | None = None
    scores_output: str | None = None


AnyModelConfig = HttpModelConfig | OpenAIModelConfig | MlflowModelConfig | KServeModelConfig
ModelConfig = Annotated[AnyModelConfig, Field(discriminator="adapter")]
ADAPTERS = ("openai", "http", "mlflow", "kserve-v2")
