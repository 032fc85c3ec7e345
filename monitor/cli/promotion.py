"""``--promote-alias`` of ``monitor gate`` and ``monitor canary``: the checks before the
command runs (exit 2 on a bad alias or a model without a registry) and the promotion once
it passed (exit 3 when the registry or the store fails). The promotion itself is
:func:`monitor.registry.promotion.promote`; the actor in the audit log is ``$USER``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import click

from monitor.cli.common import EXIT_STARTUP, EXIT_USAGE, fail, ready_store

if TYPE_CHECKING:
    from monitor.config import AnyModelConfig, Config
    from monitor.registry.promotion import Evidence

__all__ = ["check_promotable", "check_store", "promote_version", "registry_version"]

EXIT_INFRASTRUCTURE = EXIT_STARTUP

# An alias MLflow accepts: not "latest", not "v" and a number (both name versions).
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def check_promotable(config: Config, model_name: str, alias: str) -> AnyModelConfig:
    """``model_name``'s configuration; exit 2 unless ``alias`` can be set in its registry."""
    if not _ALIAS.fullmatch(alias) or _RESERVED_ALIAS.fullmatch(alias):
        fail(
            EXIT_USAGE,
            f"--promote-alias {alias!r}: expected letters, digits, '_' or '-', and not"
            " 'latest' or 'v<number>' (MLflow reserves them)",
        )
    model = next((m for m in config.models if m.name == model_name), None)
    if model is None:
        fail(EXIT_USAGE, f"no model {model_name!r} in the configuration")
    if model.registry is None:
        fail(
            EXIT_USAGE,
            f"--promote-alias: model {model_name!r} has no registry"
            ' (registry = { kind = "mlflow", url = ..., name = ..., alias = ... })',
        )
    return model


def check_store(config: Config) -> None:
    """Exit 3 unless the configured store answers and is migrated (where the promotion
    will be audited), before a long command starts."""
    ready_store(config).close()


def registry_version(model: AnyModelConfig, what: str) -> str:
    """The version ``model``'s registry alias names now; exit 3 naming ``what`` when the
    registry cannot say."""
    from monitor.errors import RegistryError
    from monitor.registry import open_registry

    assert model.registry is not None
    try:
        with open_registry(model.registry) as registry:
            return registry.alias_version()
    except RegistryError as exc:
        fail(EXIT_INFRASTRUCTURE, f"{what}: {exc}")


def promote_version(
    config: Config,
    model: AnyModelConfig,
    version: str,
    alias: str,
    evidence: Evidence,
    *,
    command: str,
    unmoved: bool = False,
) -> None:
    """Promote ``version`` of ``model``'s registered model to ``alias`` on ``evidence``;
    exit 3 if the registry or the store fails. With ``unmoved``, first check that the
    model's own registry alias still names ``version`` (it was resolved when ``command``
    started): if it moved meanwhile, the judged version is no longer the candidate, and
    nothing is promoted (exit 3)."""
    from monitor.errors import RegistryError, StoreError
    from monitor.registry import open_registry
    from monitor.registry.promotion import promote

    registry_config = model.registry
    assert registry_config is not None
    store = ready_store(config)
    try:
        with open_registry(registry_config) as registry:
            if unmoved and (now := registry.alias_version()) != version:
                fail(
                    EXIT_INFRASTRUCTURE,
                    f"the {command} passed, but alias {registry_config.alias!r} of registered"
                    f" model {registry_config.name!r} moved from version {version} to {now}"
                    f" during it: version {version} was judged, so nothing was promoted (run"
                    f" the {command} again for version {now})",
                )
            actor = os.environ.get("USER") or "unknown"
            promotion = promote(registry, version, alias, evidence, audit=store.audit, actor=actor)
    except RegistryError as exc:
        fail(EXIT_INFRASTRUCTURE, f"the {command} passed but the promotion failed: {exc}")
    except StoreError as exc:
        fail(
            EXIT_INFRASTRUCTURE,
            f"version {version} was promoted to alias {alias!r}, but the audit log could not"
            f" record it: {exc}",
        )
    finally:
        store.close()
    click.echo(promotion.line(registry.where), err=True)
