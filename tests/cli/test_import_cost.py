"""What importing the CLI and the configuration costs: none of the heavy libraries.

``monitor --help``, ``--version`` and ``check-config`` (a pre-commit hook, a CI step) must
start at once; scikit-learn, scipy, pandas, Evidently and FastAPI take seconds to import and
are imported by the code that computes or serves with them. Each check runs in a fresh
interpreter, so what an earlier test imported cannot hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT, deadline

HEAVY = ("sklearn", "scipy", "pandas", "evidently", "fastapi", "sqlalchemy", "apscheduler")


def imported_after(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a fresh Python."""
    report = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=deadline(60),
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import monitor.cli",
        "import monitor.config",
        "import monitor.scoring",
        "from monitor.config import load_config; load_config('config.example.toml')",
    ],
    ids=["cli", "config", "scoring", "load-example"],
)
def test_no_heavy_library_is_imported(code: str) -> None:
    assert imported_after(code).isdisjoint(HEAVY)


def test_the_check_itself_can_fail() -> None:
    assert {"sklearn", "scipy"} <= imported_after(
        "import monitor.scoring.classification as c\nc.F1().compute(['a', 'b'], ['a', 'a'])"
    )


def test_monitor_drift_on_files_imports_no_store_and_no_pandas() -> None:
    # the engine needs scipy; reading files needs pyarrow only, not SQL or pandas
    heavy = set(HEAVY) - {"scipy"}
    assert imported_after("import monitor.streams.oneoff").isdisjoint(heavy)
