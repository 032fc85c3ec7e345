"""The exceptions ``monitor`` raises, all under one root.

    MonitorError
    ├── ConfigError        the configuration file is unreadable or invalid; carries every problem
    ├── DatasetError       a suite's dataset cannot be read or a row lacks a mapped field
    ├── AdapterError       one request to a model endpoint failed; carries an error kind
    ├── StoreError         the store refused an operation (unknown run, wrong state, unreachable)
    │   └── StoreUnavailable   the store could not be reached, or lost the connection: retry
    │       └── StoreBusy  the database stayed locked by other writers; retry later
    ├── BatchError         an ingest batch does not fit its stream's schema; lists rows and columns
    ├── SourceError        a stream's reference or current data cannot be read
    ├── RegistryError      a model registry could not be reached or refused a call
    └── StartupError       the daemon could not start (port in use, store unreachable)

Library code raises these; only ``monitor.cli`` turns them into exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

# How a request to a model failed. ``bad_request``: the request could not be built from the
# case (a template names a field the case lacks); the endpoint was never called.
ErrorKind = Literal["timeout", "http_status", "bad_response", "connection", "bad_request"]


class MonitorError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid. ``problems`` holds one line per problem, each naming
    the key path, the bad value and what was expected."""

    def __init__(self, problems: Sequence[str], *, source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


class DatasetError(MonitorError):
    """A suite's dataset cannot be loaded."""


class AdapterError(MonitorError):
    """A request to a model endpoint failed. ``kind`` says how, so a failed case is never
    mistaken for a wrong answer."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        self.kind: ErrorKind = kind
        super().__init__(message)


class StoreError(MonitorError):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store could not be reached or dropped the connection (refused, reset, locked):
    the operation may succeed if tried again, unlike a refusal of the request itself."""


class StoreBusy(StoreUnavailable):
    """The database stayed locked by other writers past every retry: nothing was
    written, and the same call may be made again later."""


class BatchError(MonitorError):
    """An ingest batch was refused whole. ``problems`` holds the first few offending
    ``(row, column, message)`` triples (row and column ``None`` when the batch as a whole
    is wrong); ``total`` counts them all."""

    def __init__(
        self, problems: Sequence[tuple[int | None, str | None, str]], *, total: int | None = None
    ) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        first = self.problems[0] if self.problems else (None, None, "invalid batch")
        super().__init__(f"{self.total} problem(s) in the batch; first: {first[2]}")


class SourceError(MonitorError):
    """A stream's reference or current data cannot be read (missing file, bad query)."""


class RegistryError(MonitorError):
    """A model registry (MLflow's) could not be reached, refused the credentials, or has
    no such model, alias or version; the message never holds the token."""


class StartupError(MonitorError):
    """The daemon could not start; the message says which part and why."""
