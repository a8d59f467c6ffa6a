"""Alembic revisions of the store schema, run programmatically by :mod:`assay.store.migrate`.

To add a revision (a new table or column), from the repository root::

    python -c "from assay.store.migrate import new_revision; print(new_revision('prediction log'))"

This writes ``versions/vNNNN_prediction_log.py`` (the next number, chained to the
current head) from ``script.py.mako``. Fill in ``upgrade()`` and ``downgrade()`` with
portable operations (``op.create_table``, ``op.add_column``; use
``op.batch_alter_table`` to alter an existing table so SQLite can follow), then add
the same table or column to :mod:`assay.store.tables`. The store contract test fails
while the two disagree.
"""
