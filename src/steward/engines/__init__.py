"""Engines: the runtime's executor and run-store protocols bound to a backend.

`EmbeddedEngine` is the local journal on SQLite or PostgreSQL; `steward.engines.temporal`
drives the same runs as Temporal workflows (the `temporal` extra). Level 4: an engine
implements protocols the runtime (level 3) defines, over the store (level 1); the
server and the CLI (level 5) choose one.
"""

from steward.engines.embedded import EmbeddedEngine, EmbeddedExecutor

__all__ = ["EmbeddedEngine", "EmbeddedExecutor"]
