"""Migration scripts, one per schema revision, numbered ``0001``, ``0002``, ...

Alembic skips this file when it scans for revisions; it exists so the scripts ship as
part of the ``monitor.store.migrations`` package.
"""
