"""The JSON shapes the daemon answers and the gate reads: pydantic models of runs and
verdicts (``runs``, ``verdicts``).

The API's routes return them and ``monitor gate`` renders them (locally, or read back from
a daemon with ``--remote``), so both show the same report. Importable without FastAPI.

May import: the shared vocabulary, ``scoring`` (slice gaps) and pydantic. Never: ``api``,
``gate``, ``store``, ``daemon``, ``cli``.
"""
