"""JSON request bodies, parsed by the route after the token check, strictly.

FastAPI parses a declared body with the standard library before any dependency runs,
which takes nesting until the interpreter's recursion limit (a 400 "error parsing the
body"), lone surrogates (which no store can encode) and integers of thousands of digits.
Routes here read the raw body instead and hand it to pydantic's JSON parser: nesting
deeper than 200, a lone surrogate, or a number it cannot hold is a 422 naming ``body``
with the parser's line and column; a field out of its declared range is a 422 naming
the field. ``body_schema`` documents the body in the OpenAPI document all the same.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

__all__ = ["body_schema", "inline", "parse_json"]

M = TypeVar("M", bound=BaseModel)


def parse_json(model: type[M], raw: bytes) -> M:
    """``raw`` validated as ``model``; a ``RequestValidationError`` (422) otherwise."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that parses a ``model`` body itself."""
    schema = inline(model.model_json_schema())
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` written in place: the OpenAPI document resolves
    ``$ref`` from its own root, where those definitions are not."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined
