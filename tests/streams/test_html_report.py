"""The HTML drift report: the engine's verdicts, and no way for ingested text to run."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from monitor.config import StreamConfig
from monitor.drift import build_profile, compare
from monitor.streams import sources
from monitor.streams.evaluate import column_specs, drift_settings
from monitor.streams.html import CONTENT_SECURITY_POLICY, render_report
from tests.servers import deadline
from tests.streams.conftest import MakeConfig, stream_table

# The classes of the OWASP XSS filter-evasion cheat sheet: script elements, a </script>
# break-out, event handlers, javascript: and data: URLs, SVG, attribute break-outs, case
# and encoding tricks, comments and CDATA, style/expression, meta refresh, and iframes.
PAYLOADS = (
    "<script>alert(1)</script>",
    "</script><script>alert(document.domain)</script>",
    "<ScRiPt SRC=//xss.invalid/xss.js></sCrIpT>",
    "<img src=x onerror=alert(1)>",
    '"><img src=x onerror="alert(1)">',
    "'><svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<a href=\"javascript:alert('XSS')\">click</a>",
    "<a href=JaVaScRiPt:alert(1)>x</a>",
    "<iframe src=javascript:alert(1)></iframe>",
    "<body onload=alert(1)>",
    "<div style=\"background-image:url(javascript:alert('XSS'))\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1);">',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<![CDATA[<script>alert(1)</script>]]>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    '<base href="javascript:alert(1)//">',
    "<style>@import 'javascript:alert(1)';</style>",
)

# What the page itself is made of; anything else came from the data.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "small", "span", "table",
    "tr", "th", "td", "p", "section", "svg", "rect", "text", "line",
}  # fmt: skip


class Page(HTMLParser):
    """The elements, attributes and text of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def window(n: int, *, shift: float, seed: int, regions: Any) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "ts": pa.array(["2024-05-01T12:00:00Z"] * n),
            "alcohol": rng.normal(10 + shift, 1, n),
            "acidity": rng.lognormal(0, 0.5, n),
            "region": pa.array([regions[i % len(regions)] for i in range(n)]),
        }
    )


def judge(stream: StreamConfig, reference: pa.Table, current: pa.Table) -> Any:
    profile = build_profile(
        sources.to_columns(reference, stream), column_specs(stream), drift_settings(stream)
    )
    return compare(profile, sources.to_columns(current, stream))


@pytest.fixture
def stream(make_stream_config: MakeConfig) -> StreamConfig:
    (config,) = make_stream_config(stream_table(report={"html": True})).streams
    return config


def test_no_injected_markup_survives_and_every_payload_is_shown_as_text(
    stream: StreamConfig,
) -> None:
    reference = window(2000, shift=0, seed=1, regions=["north", "south", "east"])
    current = window(600, shift=0, seed=2, regions=list(PAYLOADS))
    result = judge(stream, reference, current)
    html = render_report(stream, result, reference, current, window=PAYLOADS[1])
    page = parse(html)

    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    for tag, attrs in page.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name in {
                "lang",
                "charset",
                "http-equiv",
                "content",
                "name",
                "class",
                "x",
                "y",
                "x1",
                "x2",
                "y1",
                "y2",
                "width",
                "height",
                "role",
                "viewbox",
            }
            assert "javascript:" not in (value or "").lower() or name == "content"
    assert not re.search(r"<\s*script", html, re.IGNORECASE)
    # The payloads are there, as text: the new categories, the window's name.
    text = "".join(page.text)
    shown = [p for p in PAYLOADS if p[:31] in text]
    assert len(shown) >= 12 and PAYLOADS[1] in text


def test_the_style_block_is_the_only_style_the_policy_allows(stream: StreamConfig) -> None:
    reference = window(500, shift=0, seed=1, regions=["a", "b"])
    result = judge(stream, reference, reference)
    page = parse(render_report(stream, result, reference, reference))
    (style,) = page.styles
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    (meta,) = [
        dict(a)
        for t, a in page.tags
        if t == "meta" and ("http-equiv", "Content-Security-Policy") in a
    ]
    assert (
        meta["content"] in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY
    )


def test_the_page_says_what_the_engine_decided(stream: StreamConfig) -> None:
    reference = window(3000, shift=0, seed=1, regions=["north", "south", "east"])
    current = window(1000, shift=1.5, seed=2, regions=["north", "south", "east"])
    result = judge(stream, reference, current)
    assert result.drifted_columns == ("alcohol",)  # the premise: one of three drifted
    page = parse(render_report(stream, result, reference, current))
    sections = [dict(a)["class"] for t, a in page.tags if t == "section"]
    assert sections == ["column drifted", "column stable", "column stable"]
    text = " ".join(page.text)
    assert "not detected: 1 of 3 columns drifted" in text
    alcohol = next(c for c in result.columns if c.column == "alcohol")
    first = alcohol.results[0]
    assert f"{first.method} (decides)" in text
    assert f"{first.threshold:.4g}" in text and f"{first.statistic:.4g}" in text
    # Plots: one per column, reference and window bars for every bin or category.
    assert sum(1 for t, _ in page.tags if t == "svg") == 3 + 2  # + the legend's two swatches
    rects = [dict(a)["class"] for t, a in page.tags if t == "rect"]
    assert rects.count("ref") == rects.count("cur") == 20 + 20 + 3 + 1


def test_thirty_columns_make_a_small_page(make_stream_config: MakeConfig) -> None:
    names = [f"c{i}" for i in range(30)]
    (stream,) = make_stream_config(
        stream_table(numerical=names, categorical=[], report={"html": True})
    ).streams
    rng = np.random.default_rng(0)
    reference = pa.table({n: rng.normal(0, 1, 30_000) for n in names} | {"ts": ["t"] * 30_000})
    current = pa.table({n: rng.normal(0.07, 1, 30_000) for n in names} | {"ts": ["t"] * 30_000})
    result = judge(stream, reference, current)
    html = render_report(stream, result, reference, current)
    assert len(html.encode()) < 2_000_000
    drifted = [dict(a)["class"] for t, a in parse(html).tags if t == "section"]
    assert drifted.count("column drifted") == len(result.drifted_columns)


def test_rendering_needs_neither_evidently_nor_pandas(tmp_path: Path) -> None:
    """The daemon's lock (requirements/run.txt) has neither: the page must not need them.
    The test environment has both, so the child makes them unimportable, as they are there."""
    script = """
import sys

class Absent:  # as in an install without them: importing raises ModuleNotFoundError
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in ("evidently", "pandas", "plotly"):
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, Absent)
import numpy as np, pyarrow as pa
from monitor.config import parse_config
from monitor.drift import build_profile, compare
from monitor.streams import sources
from monitor.streams.evaluate import column_specs, drift_settings
from monitor.streams.html import render_report
raw = {"streams": [{"name": "s", "timestamp": "ts", "numerical": ["x"], "categorical": ["c"],
       "reference": {"file": "r.csv"}, "window": {"rows": 100}, "report": {"html": True}}]}
(stream,) = parse_config(raw, base_dir=".").streams
t = pa.table({"ts": ["t"] * 300, "x": np.arange(300.0), "c": ["a", "b", "c"] * 100})
profile = build_profile(sources.to_columns(t, stream), column_specs(stream), drift_settings(stream))
html = render_report(stream, compare(profile, sources.to_columns(t, stream)), t, t)
print(html.count("<svg"))
"""
    (tmp_path / "r.csv").write_text("ts,x,c\n")
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=deadline(60),
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 2 + 2  # x and c, and the legend's two swatches
