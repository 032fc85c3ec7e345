"""Alembic migrations of the store, run in-process by ``monitor.store.migrate``.

There is no ``alembic.ini``: the store builds its Alembic config in code and hands
``env.py`` a live connection. See ``env.py`` for what a migration may assume.
"""
