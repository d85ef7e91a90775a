"""Alembic environment: runs on the connection the hub hands over (or the URL in the config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.pool import NullPool

import cloud_hub.adapt.models  # noqa: F401,E402  (adaptation tables share the metadata)
import cloud_hub.camera.models  # noqa: F401,E402  (camera tables share the metadata)
import cloud_hub.capture.models  # noqa: F401,E402  (capture tables share the metadata)
import cloud_hub.rollout.models  # noqa: F401,E402  (rollout tables share the metadata)
from cloud_hub.db import make_engine
from cloud_hub.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
