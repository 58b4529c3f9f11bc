"""Alembic environment: steward passes its own connection in `config.attributes`."""

from alembic import context

from steward.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - steward always supplies one
    raise RuntimeError("steward migrations run through steward.store.database.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
