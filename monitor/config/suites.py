"""``[[suites]]``: a dataset, how to score it, which models, and when."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from monitor.config._base import Duration, Name, Section, resolve_path
from monitor.durations import format_duration
from monitor.schedules import cron_trigger
from monitor.scoring import Task, metric_names, unknown_metric_message


def _known_metric(name: str) -> str:
    if name not in metric_names():
        raise ValueError(unknown_metric_message(name))
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]


class ScheduleConfig(Section):
    """``schedule`` of a suite: ``every = "5m"`` or ``cron = "0 * * * *"`` (UTC)."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration | None = None
    run_at_start: bool = False
    misfire_grace: Duration = timedelta(minutes=5)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression: {exc}") from None
        return value

    def describe(self) -> str:
        """``"every 30s"`` or ``"cron '0 * * * *'"``, plus jitter."""
        when = (
            f"cron {self.cron!r}"
            if self.cron
            else f"every {format_duration(self.every or timedelta(0))}"
        )
        return when + (f" (jitter {format_duration(self.jitter)})" if self.jitter else "")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of 'every' (a duration) or 'cron'")
        return self


class SuiteConfig(Section):
    """``[[suites]]``: a dataset, how to score it, which models, and when."""

    name: Name
    dataset: Path
    task: Task
    metrics: tuple[MetricName, ...] = Field(min_length=1)
    models: tuple[str, ...] = Field(min_length=1)
    id: str | None = "id"
    inputs: tuple[str, ...] | None = None
    expected: str = "expected"
    schedule: ScheduleConfig | None = None
    max_error_rate: float = Field(0.1, ge=0.0, le=1.0)

    @field_validator("dataset")
    @classmethod
    def _readable_file(cls, value: Path, info: ValidationInfo) -> Path:
        path = resolve_path(value, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"no readable file at '{path}'")
        return path
