"""Notifications: from the alert engine's transitions to messages delivered by the sinks.

``service`` feeds events to the pure engine (``monitor.alerts``), stores the new alert
states and enqueues one outbox message per sink and transition in the same transaction;
``delivery`` drains the outbox into the sinks, in order per alert, with retries;
``sending`` sends one sample alert (``monitor alerts test``).

May import: the shared vocabulary, ``config``, ``alerts``, ``store``, ``sinks``. Never:
``api``, ``daemon``, ``cli``.
"""
