"""``[suites.tiers]`` and ``review``: parsed into the suite, a tier applies its sample,
unknown tiers and bad values are refused naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config
from tests.config.test_config import VALID, problems_of, write

TIERS = (
    VALID
    + """
review = "on-regression"

[suites.tiers]
smoke = { sample = 100 }
full = {}
"""
)


def test_tiers_apply_their_sample_and_keep_the_rest(tmp_path: Path) -> None:
    (suite,) = load_config(write(tmp_path, TIERS), environ={"TOKEN": "x"}).suites
    assert suite.review == "on-regression" and set(suite.tiers) == {"smoke", "full"}
    assert suite.for_tier("smoke").sample == 100
    assert suite.for_tier("full") == suite and suite.sample == "full"
    with pytest.raises(KeyError, match=r"no tier 'nightly' \(tiers: full, smoke\)"):
        suite.for_tier("nightly")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("sample = 100", "sample = 0", "suites[0].tiers.smoke.sample"),
        ("sample = 100", "samples = 100", "suites[0].tiers.smoke.samples"),
        ('review = "on-regression"', 'review = "sometimes"', "suites[0].review"),
    ],
    ids=["sample", "unknown-key", "review"],
)
def test_bad_tiers_and_review_name_the_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    problems = problems_of(write(tmp_path, TIERS.replace(old, new)))
    assert any(p.startswith(expected) for p in problems), problems
