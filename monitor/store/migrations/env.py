"""Alembic environment: migrate over the connection the store passes in.

``monitor.store.migrate.upgrade`` opens a write transaction (``BEGIN IMMEDIATE`` on
SQLite; on PostgreSQL, holding an advisory lock so replicas starting together do not race)
and puts the connection in ``config.attributes["connection"]``. Migrations run inside
that transaction, so a failed upgrade leaves the schema as it was on both backends.
Offline (``--sql``) mode is not supported: there is no URL here to render against.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from monitor.store.tables import metadata


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "monitor's migrations run through monitor.store (e.g. 'monitor db upgrade'), "
            "which passes a connection in config.attributes['connection']"
        )
    _run_online(connection)


_main()
