"""The server face: REST API, console, metrics."""

from steward.server.app import create_app, load_agents

__all__ = ["create_app", "load_agents"]
