"""Runs: one suite executed against one model, from the dataset file to stored results.

``datasets`` reads and checks a suite's file (its readers in ``dataset_files``) and
streams its cases; ``case_feed`` hands them to the workers; ``runner`` sends each case
through a model adapter, scores the answers with ``monitor.scoring`` and writes the run to
the store in batches.

May import: the shared vocabulary, ``config``, ``scoring``, ``adapters``, ``store``.
Never: ``api``, ``daemon``, ``cli``, ``gate``.
"""
