"""The daemon: one process that owns the lifecycle, the signals and the wiring.

``lifecycle`` is the ``Daemon`` (start, run, graceful shutdown; the scheduler and the jobs
it runs); ``streams`` holds the leader's jobs on streams (their windows judged, the alert
rules told); ``work`` executes and judges the queued runs this replica claimed;
``serving`` runs the HTTP API (uvicorn) inside the daemon's event loop;
``recovery`` (with ``slots``) is what it does when the store stops answering and about runs
whose process died: heartbeats, the sweep, the slots kept meanwhile.

This is the top of the data path: it may import every stage below it (config, runs,
verdicts, streams, alerts, notify, metrics, store, api). Nothing but ``cli`` and ``demo``
imports it. The package itself imports nothing, so ``monitor.daemon.serving`` can be
used without loading the whole daemon.
"""
