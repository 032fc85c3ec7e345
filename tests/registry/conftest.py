"""What the registry tests share: a real ``mlflow server`` on loopback (SQLite backend)
and the test's own calls to its REST API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.servers import find_tool, wait_for

API = "/api/2.0/mlflow"
# MLflow's own call home, off: the tests make no network call beyond loopback.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
# The server's background job runner (GenAI jobs) is not needed for the registry and
# costs seconds at start-up.
SERVER_ENV = {**QUIET, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server with its registry, on a SQLite file: started once for
    the session's worker (it takes many seconds), ready when ``/health`` answers. Each
    module registers models of its own names."""
    binary = find_tool("mlflow")
    assert binary is not None, "mlflow is a test dependency (requirements/test.txt)"
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **SERVER_ENV},
        start_new_session=True,  # its workers go down with it
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (root / "server.log").read_text()
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=60, what="mlflow server to answer /health", interval=0.25)
        yield url
    finally:
        # Its SQLite file is thrown away with tmp_path: no graceful stop needed, and its
        # uvicorn takes many seconds to drain one.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


@dataclass(frozen=True)
class Registry:
    """The test's own REST calls to the MLflow server (how a training job registers), on
    registered model ``name``."""

    url: str
    name: str = "churn"

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(method, f"{self.url}{API}{path}", timeout=10, **kwargs)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def alias(self, alias: str) -> str:
        found = self.call(
            "GET", "/registered-models/alias", params={"name": self.name, "alias": alias}
        )
        return str(found["model_version"]["version"])

    def set_alias(self, alias: str, version: str) -> None:
        body = {"name": self.name, "alias": alias, "version": version}
        self.call("POST", "/registered-models/alias", json=body)

    def tags(self, version: str) -> dict[str, str]:
        found = self.call(
            "GET", "/model-versions/get", params={"name": self.name, "version": version}
        )
        return {t["key"]: t["value"] for t in found["model_version"].get("tags", [])}

    def register(self, versions: int) -> None:
        """Create the registered model with ``versions`` versions, 1 to ``versions``."""
        self.call("POST", "/registered-models/create", json={"name": self.name})
        for version in range(1, versions + 1):
            source = {"name": self.name, "source": f"s3://models/{self.name}/{version}"}
            created = self.call("POST", "/model-versions/create", json=source)
            assert created["model_version"]["version"] == str(version)

    def monitor_tags(self, version: str) -> dict[str, str]:
        """The tags monitor set on ``version``."""
        return {k: v for k, v in self.tags(version).items() if k.startswith("monitor.")}
