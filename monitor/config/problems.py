"""Turn configuration problems into one-line messages that name the key path.

Two sources: pydantic's validation errors, and cross-references pydantic cannot see
(duplicate names, suites naming unknown models). Both are reported together, so a user
fixes a broken file in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from monitor.scoring import TASKS, metric_class

MAX_DEPTH = 32
"""How deep arrays and tables may nest. No key of the schema needs more than a few levels;
far deeper input (a thousand ``[``) would exhaust the parser's recursion."""
_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")


def key_path(loc: Iterable[int | str]) -> str:
    """``("suites", 1, "schedule", "cron")`` -> ``suites[1].schedule.cron``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_validation_error(
    exc: ValidationError, templates: Mapping[str, str], adapters: Sequence[str]
) -> list[str]:
    """One line per pydantic error. Values that came from the environment are shown as the
    ``${VAR}`` text the file holds, never expanded, so secrets stay out of messages."""
    lines = []
    choices = ", ".join(adapters)
    errors = exc.errors(include_url=False)
    # A list whose every item failed is also "too short": the items' errors say why.
    inner = {tuple(e["loc"][:i]) for e in errors for i in range(1, len(e["loc"]))}
    errors = [e for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in inner)]
    for err in errors:
        loc = [p for i, p in enumerate(err["loc"]) if not _is_union_tag(err["loc"], i, adapters)]
        path = key_path(loc)
        if err["type"] == "union_tag_invalid":
            tag = err["ctx"]["tag"]
            lines.append(f"{path}.adapter: unknown adapter {tag!r}; expected one of: {choices}")
        elif err["type"] == "union_tag_not_found":
            lines.append(f"{path}.adapter: required key is missing; expected one of: {choices}")
        else:
            lines.append(f"{path}: {_describe(err, path, templates)}")
    return lines


_SOURCE_KINDS = ("ingest", "files", "sql")


def _is_union_tag(loc: tuple[int | str, ...], i: int, adapters: Sequence[str]) -> bool:
    # pydantic puts the discriminator's value into the location: models[0].http.url,
    # streams[0].source.files.glob
    if i == 2 and loc[0] == "models" and isinstance(loc[1], int) and loc[i] in adapters:
        return True
    return i == 3 and loc[0] == "streams" and loc[2] == "source" and loc[i] in _SOURCE_KINDS


def _describe(err: Any, path: str, templates: Mapping[str, str]) -> str:
    kind, value = err["type"], err.get("input")
    last = path.rsplit(".", 1)[-1]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(last, _keys_at(err["loc"][:-1]), n=1, cutoff=0.7)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind == "missing":
        return "required key is missing"
    message = err["msg"].removeprefix("Value error, ")
    shown = _shown(value, path, templates)
    return message if shown is None or shown in message else f"{message}, got {shown}"


# Keys whose value is a secret: a message about them never shows the value.
_SECRET_KEYS = {"secret", "password", "bearer_token", "token", "api_key"}


def _shown(value: Any, path: str, templates: Mapping[str, str]) -> str | None:
    if path in templates:
        return repr(templates[path])
    if path.rsplit(".", 1)[-1] in _SECRET_KEYS:
        return None
    if isinstance(value, str | int | float | bool):
        return repr(value)
    return None


def _keys_at(loc: Iterable[int | str]) -> set[str]:
    """The keys the config tables at ``loc`` accept (several, under a tagged union)."""
    from monitor.config.loader import Config

    tables: list[type[BaseModel]] = [Config]
    for part in loc:
        if isinstance(part, int):
            continue
        fields = [t.model_fields[part] for t in tables if part in t.model_fields]
        found = [m for f in fields for m in _models_in(f.annotation)]
        tables = found or tables  # a union tag ("http") is not a field: stay put
    return {key for table in tables for key in table.model_fields}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def too_deep(text: str) -> str:
    """The problem of a TOML text nested too deeply to parse: the key and line where the
    nesting first passes ``MAX_DEPTH`` (brackets in strings are not counted)."""
    depth, table, arrays = 0, "", dict[str, int]()
    for number, line in enumerate(text.splitlines(), start=1):
        if depth == 0 and (header := _TABLE.match(line)):
            table = header.group(1)
            if line.lstrip().startswith("[["):
                arrays[table] = arrays.get(table, -1) + 1
                table = f"{table}[{arrays[table]}]"
            continue
        key = _KEY.match(line) if depth == 0 else None
        for char in _unquoted(line):
            depth += (char in "[{") - (char in "]}")
            if depth > MAX_DEPTH:
                name = key.group(1).strip() if key else "a value"
                where = f"{table}.{name}" if table and key else name
                return f"{where} (line {number}): nested more than {MAX_DEPTH} levels deep"
    return f"nested more than {MAX_DEPTH} levels deep"


def _unquoted(line: str) -> str:
    """``line`` without its quoted strings and comment (single-line strings only)."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", line).split("#", 1)[0]


def raw_problems(raw: Mapping[str, Any]) -> list[str]:
    """Cross-reference problems found on the raw data, whatever else is wrong with it."""
    models = _named_items(raw.get("models"))
    suites = _named_items(raw.get("suites"))
    streams = _named_items(raw.get("streams"))
    problems = _duplicates("models", models) + _duplicates("suites", suites)
    alerts = raw.get("alerts")
    if isinstance(alerts, dict):
        for key in ("rules", "sinks"):
            problems += _duplicates(f"alerts.{key}", _named_items(alerts.get(key)))
    problems += _duplicates("streams", streams)
    known = list(dict.fromkeys(name for _, name in models))
    suite_items = raw.get("suites")
    for i, suite in enumerate(suite_items if isinstance(suite_items, list) else []):
        if isinstance(suite, dict):
            problems += _unknown_models(i, suite.get("models"), known)
            problems += _misfit_metrics(i, suite.get("task"), suite.get("metrics"))
            problems += _unknown_judges(i, suite.get("metrics"), models, raw.get("models"))
    if isinstance(alerts, dict):
        named = {"suite": suites, "model": models, "stream": streams}
        problems += _unknown_rule_refs(alerts.get("rules"), named)
    problems += _shadow_stream_problems(raw.get("streams"))
    return problems


def _shadow_stream_problems(items: Any) -> list[str]:
    """Streams whose ``shadow.stream`` names no stream, or one whose records cannot be
    joined to theirs: it needs the ingest source, a ``record_id`` and a ``prediction`` of
    the same kind."""
    streams = [s if isinstance(s, dict) else {} for s in (items if isinstance(items, list) else [])]
    by_name = {s["name"]: s for s in streams if isinstance(s.get("name"), str)}
    problems = []
    for i, stream in enumerate(streams):
        shadow = stream.get("shadow")
        ref = shadow.get("stream") if isinstance(shadow, dict) else None
        if not isinstance(ref, str) or ref == stream.get("name"):
            continue  # a stream naming itself is the stream's own check
        where = f"streams[{i}].shadow.stream"
        other = by_name.get(ref)
        if other is None:
            problems.append(f"{where}: unknown stream {ref!r}; {_hint(ref, list(by_name))}")
            continue
        source = other.get("source")
        kind = source.get("kind", "ingest") if isinstance(source, dict) else "ingest"
        mine = stream.get("prediction_kind", "numerical")
        theirs = other.get("prediction_kind", "numerical")
        if kind != "ingest":
            problems.append(f"{where}: stream {ref!r} reads {kind}; a shadow stream is ingested")
        if not isinstance(other.get("record_id"), str):
            problems.append(
                f"{where}: stream {ref!r} has no 'record_id'; its records are joined by it"
            )
        if not isinstance(other.get("prediction"), str):
            problems.append(
                f"{where}: stream {ref!r} has no 'prediction', the shadow model's prediction"
            )
        elif theirs != mine:
            problems.append(
                f"{where}: stream {ref!r} has prediction_kind {theirs!r}; expected {mine!r}"
                " (this stream's)"
            )
    return problems


def _unknown_rule_refs(rules: Any, named: Mapping[str, list[tuple[int, str]]]) -> list[str]:
    """Rules that watch a suite, model or stream no section defines: they would never
    fire (a rule matches names exactly)."""
    problems = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        for key, items in named.items():
            ref = rule.get(key) if isinstance(rule, dict) else None
            known = list(dict.fromkeys(name for _, name in items))
            if isinstance(ref, str) and ref not in known:
                problems.append(
                    f"alerts.rules[{i}].{key}: unknown {key} {ref!r}; {_hint(ref, known)}"
                )
    return problems


def _hint(ref: str, known: list[str]) -> str:
    close = difflib.get_close_matches(ref, known, n=1)
    return f"did you mean {close[0]!r}?" if close else f"defined: {', '.join(known) or 'none'}"


def _unknown_models(i: int, refs: Any, known: list[str]) -> list[str]:
    problems = []
    for j, ref in enumerate(refs if isinstance(refs, list) else []):
        if isinstance(ref, str) and ref not in known:
            problems.append(f"suites[{i}].models[{j}]: unknown model {ref!r}; {_hint(ref, known)}")
    return problems


def _unknown_judges(
    i: int, specs: Any, models: list[tuple[int, str]], raw_models: Any
) -> list[str]:
    """Judge metrics whose ``judge`` names no model, or a model whose role is not
    ``judge`` (a judge's tokens and cost are reported apart, so the role must say so)."""
    roles = {
        name: raw_models[j].get("role", "production")
        for j, name in models
        if isinstance(raw_models, list)
    }
    problems = []
    for j, spec in enumerate(specs if isinstance(specs, list) else []):
        for key in ("judge", "embedder"):
            ref = spec.get(key) if isinstance(spec, dict) else None
            if not isinstance(ref, str):
                continue
            where = f"suites[{i}].metrics[{j}].{key}"
            if ref not in roles:
                problems.append(f"{where}: unknown model {ref!r}; {_hint(ref, list(roles))}")
            elif roles[ref] != key:
                article = "a" if key == "judge" else "an"
                problems.append(
                    f"{where}: model {ref!r} has role {roles[ref]!r};"
                    f' {article} {key} needs role = "{key}"'
                )
    return problems


def _misfit_metrics(i: int, task: Any, names: Any) -> list[str]:
    problems = []
    for j, spec in enumerate(names if isinstance(names, list) else []):
        name = spec.get("name") if isinstance(spec, dict) else spec
        if isinstance(name, str) and isinstance(task, str):
            try:
                tasks = metric_class(name).tasks
            except KeyError:
                continue
            if task in TASKS and task not in tasks:
                problems.append(
                    f"suites[{i}].metrics[{j}]: metric {name!r} does not apply to task {task!r}"
                    f" (it scores: {', '.join(sorted(tasks))})"
                )
    return problems


def _named_items(items: Any) -> list[tuple[int, str]]:
    if not isinstance(items, list):
        return []
    return [
        (i, item["name"])
        for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]


def _duplicates(section: str, named: list[tuple[int, str]]) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for i, name in named:
        if name in first:
            problems.append(
                f"{section}[{i}].name: duplicate name {name!r}"
                f" (first used by {section}[{first[name]}])"
            )
        else:
            first[name] = i
    return problems
