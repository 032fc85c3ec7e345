"""MLflow's model registry over its REST API (``/api/2.0/mlflow``), with httpx.

Three calls, nothing else: the version an alias names
(``GET registered-models/alias``), moving an alias to a version
(``POST registered-models/alias``) and tagging a version
(``POST model-versions/set-tag``). MLflow's Python client is not needed: monitor speaks
the documented REST API, which every MLflow server (self-hosted, Databricks) answers.

Every failure becomes a :class:`~monitor.errors.RegistryError` naming the registry by its
scheme, host and port only (a URL's user info is never repeated) and what went wrong; the
bearer token (``token_env``) travels in a header and never in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.config.models import RegistryConfig
from monitor.errors import RegistryError

__all__ = ["MlflowRegistry"]

_API = "/api/2.0/mlflow"
# MLflow's message in an error answer is shown, shortened: it is the server's own text.
_MESSAGE_MAX = 300


class MlflowRegistry:
    """One registered model of an MLflow registry (``registry`` of a model).

    ``transport`` replaces httpx's (tests); ``environ`` is where ``token_env`` is read.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        config: RegistryConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        parts = urlsplit(config.url)
        port = f":{parts.port}" if parts.port else ""
        self.where = f"MLflow registry at {parts.scheme}://{parts.hostname}{port}"
        base, headers = config.url, {}
        if config.token_env:
            headers = {"Authorization": f"Bearer {self._token(environ)}"}
            # The token is the credential: user info in the URL would replace it.
            base = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self._client = httpx.Client(
            base_url=base.rstrip("/") + _API,
            headers=headers,
            timeout=config.timeout.total_seconds(),
            transport=transport,
            # The registry is named in the config: no proxy from the environment decides
            # where its token goes, and no redirect carries it elsewhere.
            trust_env=False,
            follow_redirects=False,
        )

    def __enter__(self) -> MlflowRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def alias_version(self, alias: str | None = None) -> str:
        """The version ``alias`` (by default the configured one) names."""
        alias = alias or self.config.alias
        answer = self._call(
            "GET",
            "/registered-models/alias",
            f"alias {alias!r} of registered model {self.config.name!r}",
            params={"name": self.config.name, "alias": alias},
        )
        version = (answer.get("model_version") or {}).get("version")
        if not isinstance(version, str | int) or isinstance(version, bool) or version == "":
            raise RegistryError(
                f"{self.where}: the answer for alias {alias!r} of registered model"
                f" {self.config.name!r} holds no model_version.version"
            )
        return str(version)

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moved from whichever version had it)."""
        self._call(
            "POST",
            "/registered-models/alias",
            f"setting alias {alias!r} of registered model {self.config.name!r} to version"
            f" {version}",
            json={"name": self.config.name, "alias": alias, "version": version},
        )

    def set_tags(self, version: str, tags: Mapping[str, str]) -> None:
        """Set each tag on ``version`` (MLflow sets one tag a call)."""
        for key, value in tags.items():
            self._call(
                "POST",
                "/model-versions/set-tag",
                f"tagging version {version} of registered model {self.config.name!r}",
                json={"name": self.config.name, "version": version, "key": key, "value": value},
            )

    def _token(self, environ: Mapping[str, str] | None) -> str:
        name = self.config.token_env
        assert name is not None
        token = (os.environ if environ is None else environ).get(name, "")
        if not token:
            raise RegistryError(f"registry.token_env names ${name}, which is not set or empty")
        if not token.isascii() or not token.isprintable():
            raise RegistryError(f"${name} holds a character an HTTP header cannot carry")
        return token

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RegistryError(
                f"{self.where}: {what}: no answer within {self.config.timeout.total_seconds():g} s"
            ) from None
        except httpx.TransportError as exc:
            raise RegistryError(
                f"{self.where} is unreachable ({what}): {type(exc).__name__}: {exc}"
            ) from None
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise RegistryError(f"{self.where}: {what}: the answer is not a JSON object")
            return body
        raise RegistryError(f"{self.where}: {what}: {_refusal(response, self.config)}")


def _refusal(response: httpx.Response, config: RegistryConfig) -> str:
    """What an error answer says: the status, MLflow's error code and its message."""
    status = response.status_code
    if status in (401, 403):
        how = f"check ${config.token_env}" if config.token_env else "set registry.token_env"
        return f"HTTP {status}: the registry refused the credentials ({how})"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error_code"):
        message = str(body.get("message", ""))[:_MESSAGE_MAX]
        return f"HTTP {status} {body['error_code']}: {message}"
    return f"HTTP {status} {response.reason_phrase}".rstrip()
