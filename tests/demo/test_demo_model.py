"""The demo model: accurate when healthy, deterministically worse when degraded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sklearn.metrics import accuracy_score

from monitor.demo import DemoModel, WineCase, read_test_set


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def cases() -> list[WineCase]:
    return read_test_set()


@pytest.fixture
def model() -> DemoModel:
    return DemoModel()


def accuracy(model: DemoModel, cases: list[WineCase]) -> float:
    predictions = [model.predict(case.features)[0] for case in cases]
    return float(accuracy_score([case.label for case in cases], predictions))


def test_undegraded_model_is_accurate(model: DemoModel, cases: list[WineCase]) -> None:
    assert model.level() == 0.0
    assert accuracy(model, cases) >= 0.85


def test_degraded_model_loses_about_that_share(model: DemoModel, cases: list[WineCase]) -> None:
    healthy = accuracy(model, cases)
    model.set_level(0.6)
    degraded = accuracy(model, cases)
    assert degraded < 0.6
    # about 60% of answers are swapped for a wrong class, so about 40% of the accuracy stays
    assert degraded == pytest.approx(healthy * 0.4, abs=0.15)


def test_full_degradation_changes_every_answer(model: DemoModel, cases: list[WineCase]) -> None:
    healthy = [model.predict(case.features)[0] for case in cases]
    model.set_level(1.0)
    broken = [model.predict(case.features)[0] for case in cases]
    assert all(a != b for a, b in zip(healthy, broken, strict=True))


def test_degradation_is_deterministic(cases: list[WineCase]) -> None:
    first, second = DemoModel(), DemoModel()
    first.set_level(0.6)
    second.set_level(0.6)
    for case in cases:
        answer = first.predict(case.features)
        assert first.predict(case.features) == answer
        assert second.predict(case.features) == answer


def test_higher_level_only_adds_corrupted_inputs(model: DemoModel, cases: list[WineCase]) -> None:
    def changed(level: float) -> set[str]:
        model.set_level(level)
        return {case.id for case in cases if model.predict(case.features)[0] != healthy[case.id]}

    healthy = {case.id: model.predict(case.features)[0] for case in cases}
    assert changed(0.0) == set()
    assert changed(0.3) <= changed(0.6) <= changed(1.0)
    assert changed(0.3) < changed(0.6)


@pytest.mark.parametrize("level", [0.0, 0.6, 1.0], ids=["healthy", "degraded", "broken"])
def test_probabilities_agree_with_label(
    model: DemoModel, cases: list[WineCase], level: float
) -> None:
    model.set_level(level)
    for case in cases:
        label, probabilities = model.predict(case.features)
        assert list(probabilities) == list(model.labels)
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert max(probabilities, key=probabilities.__getitem__) == label


def test_time_ramp_with_fake_clock(cases: list[WineCase]) -> None:
    clock = FakeClock()
    model = DemoModel(
        degrade_after=timedelta(minutes=2), degrade_ramp=timedelta(minutes=4), clock=clock
    )
    clock.now += 119
    assert model.level() == 0.0
    clock.now += 1 + 120
    assert model.level() == pytest.approx(0.3)
    clock.now += 120
    assert model.level() == pytest.approx(0.6)
    clock.now += 3600
    assert model.level() == pytest.approx(0.6)
    assert accuracy(model, cases) < 0.6


def test_recovers_at_once_after_recover_after() -> None:
    clock = FakeClock()
    model = DemoModel(
        degrade_after=timedelta(seconds=10),
        degrade_ramp=timedelta(seconds=10),
        recover_after=timedelta(seconds=30),
        clock=clock,
    )
    clock.now += 29.9
    assert model.level() == pytest.approx(0.6)
    clock.now += 0.1
    assert model.level() == 0.0
    clock.now += 3600
    assert model.level() == 0.0


def test_restart_clock_counts_the_schedule_from_then() -> None:
    clock = FakeClock()
    model = DemoModel(degrade_after=timedelta(seconds=10), degrade_ramp=timedelta(0), clock=clock)
    clock.now += 60  # start-up took a minute: the model must not be degraded already
    model.restart_clock()
    assert model.level() == 0.0
    clock.now += 10
    assert model.level() == pytest.approx(0.6)


def test_forced_level_overrides_ramp_until_cleared() -> None:
    clock = FakeClock()
    model = DemoModel(degrade_after=timedelta(0), degrade_ramp=timedelta(0), clock=clock)
    assert model.level() == pytest.approx(0.6)
    model.set_level(0.1)
    assert model.level() == pytest.approx(0.1)
    model.set_level(None)
    assert model.level() == pytest.approx(0.6)


def test_never_degrades_without_schedule() -> None:
    clock = FakeClock()
    model = DemoModel(clock=clock)
    clock.now += 10**6
    assert model.level() == 0.0


@pytest.mark.parametrize(
    "features",
    [[1.0] * 12, [1.0] * 14, [float("nan")] + [1.0] * 12, ["x"] * 13],
    ids=["too-short", "too-long", "nan", "not-numbers"],
)
def test_predict_rejects_bad_features(model: DemoModel, features: list[float]) -> None:
    with pytest.raises(ValueError, match="features must be"):
        model.predict(features)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"degrade_after": timedelta(seconds=-1)}, "degrade_after"),
        ({"degrade_ramp": timedelta(seconds=-1)}, "degrade_ramp"),
        ({"max_level": 1.5}, "max_level"),
        ({"recover_after": timedelta(seconds=5)}, "recover_after must come after"),
        (
            {"degrade_after": timedelta(seconds=5), "recover_after": timedelta(seconds=5)},
            "recover_after must come after",
        ),
    ],
    ids=[
        "negative-after",
        "negative-ramp",
        "max-level-above-1",
        "recover-without-degrade",
        "recover-not-later",
    ],
)
def test_rejects_meaningless_schedule(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DemoModel(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [-0.1, 1.1], ids=["negative", "above-1"])
def test_set_level_rejects_out_of_range(model: DemoModel, level: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.set_level(level)
