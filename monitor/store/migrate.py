"""Run the store's Alembic migrations in-process, without an ``alembic.ini``.

The migration scripts ship inside the package (``monitor/store/migrations``), so an
installed daemon can upgrade its own database: ``monitor db upgrade`` or a start-up hook
calls :func:`upgrade` with the store's engine.

Several replicas sharing one PostgreSQL database may start at the same moment. The upgrade
runs in one transaction that first takes a transaction-scoped advisory lock, so the
replicas upgrade one after another; the later ones find the schema already at head and
do nothing. The lock is released by COMMIT or ROLLBACK, even if the process dies.

On SQLite a migration that changes a constraint recreates the table (Alembic's batch
mode: copy, drop, rename). With foreign keys enforced, dropping ``runs`` would cascade
to every table that refers to it, or fail, so SQLite migrations run with foreign keys
off (a pragma that only takes effect outside a transaction) and ``PRAGMA
foreign_key_check`` must come back empty before the transaction commits.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from monitor.errors import StoreError
from monitor.store.engine import write_engine

__all__ = [
    "MIGRATION_LOCK_KEY",
    "SCRIPT_LOCATION",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
]

SCRIPT_LOCATION = Path(__file__).parent / "migrations"

# Arbitrary but fixed: the ASCII bytes of "monitor1" as a signed 64-bit key. Every replica
# must use the same number, and no other application on the database should.
MIGRATION_LOCK_KEY = int.from_bytes(b"monitor1", "big", signed=True)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts, optionally bound to a connection.

    ``env.py`` migrates over ``config.attributes["connection"]`` and nothing else.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    # The scripts cannot change while the process runs, and check_ready() asks often.
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of ``monitor`` knows about."""
    head = _script_directory().get_current_head()
    if head is None:
        raise StoreError(f"no migration scripts found in {SCRIPT_LOCATION}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` in one write transaction.

    Idempotent: at head it only reads the version table. On PostgreSQL concurrent callers
    are serialised by an advisory lock (see the module docstring).
    """
    with write_engine(engine).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _foreign_keys(connection, on=False)
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                command.upgrade(alembic_config(connection), revision)
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _foreign_keys(connection, on=True)


def _foreign_keys(connection: Connection, *, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy the statement would begin a transaction
    # first, and SQLite ignores this pragma inside one.
    connection.connection.driver_connection.execute(  # type: ignore[union-attr]
        f"PRAGMA foreign_keys={'ON' if on else 'OFF'}"
    )


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise StoreError(
            f"the migration left {len(broken)} row(s) referring to missing rows, e.g. "
            f"{table} row {rowid} -> {parent}; nothing was changed"
        )
