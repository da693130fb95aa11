"""Alembic environment, driven only programmatically by `db.migrate` with an open connection.

The caller owns the transaction (and the lock that serialises concurrent upgrades), so the
migrations run inside it and either all apply or none do.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
