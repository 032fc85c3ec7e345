"""Model configs for every adapter, pointed at the fake endpoint, and matching cases."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from monitor.config import AnyModelConfig, ModelConfig
from monitor.records import Case
from tests.adapters.endpoints import proba

SECRET = "sk-very-secret-key"
HEADER_SECRET = "header-secret-value"
_MODELS: TypeAdapter[AnyModelConfig] = TypeAdapter(ModelConfig)
# The HTTP client under the transport; the ``http_client`` fixture runs a module's tests
# on each.
HTTP_CLIENTS = ("aiohttp", "httpx")
http_client = "aiohttp"

BASES: dict[str, dict[str, Any]] = {
    "http": {"url": "{url}/predict?key=querysecret", "body": {"x": "{{x}}"}},
    "openai": {"url": "{url}/v1", "model": "toy", "api_key": SECRET, "prompt": "x is {{x}}"},
    "mlflow": {"url": "{url}", "columns": ["x"], "batch_size": 4},
    "kserve-v2": {
        "url": "{url}",
        "model": "toy",
        "inputs": [{"name": "x", "field": "features", "datatype": "FP32"}],
        "output": "label",
        "batch_size": 4,
    },
}


def model_for(adapter: str, url: str, **overrides: Any) -> AnyModelConfig:
    """A config for ``adapter`` against the endpoint at ``url``; fast retries by default."""
    fields = {
        "name": "m",
        "adapter": adapter,
        "headers": {"X-Api-Token": HEADER_SECRET},
        "retry": {"attempts": 2, "backoff": "10ms", "max_backoff": "50ms"},
        "http_client": http_client,
        **BASES[adapter],
        **overrides,
    }
    fields["url"] = fields["url"].replace("{url}", url)
    return _MODELS.validate_python(fields)


def case(i: int, x: float) -> Case:
    return Case(f"c{i}", {"x": x, "features": [x, 0.0]}, None)


def expected_value(adapter: str, x: float) -> Any:
    """What the fake endpoint answers for ``x`` through ``adapter`` (as configured above)."""
    if adapter == "openai":
        return f"X IS {x}"
    if adapter == "mlflow":
        return {"label": "pos" if x >= 0 else "neg", "p": proba(x)}
    return "pos" if x >= 0 else "neg"
