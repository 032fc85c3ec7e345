"""Notification tests reuse the store contract fixtures: SQLite and PostgreSQL per test."""

from __future__ import annotations

from tests.store.conftest import bare_store, store, store_url

__all__ = ["bare_store", "store", "store_url"]
