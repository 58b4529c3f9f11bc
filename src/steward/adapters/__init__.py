"""Adapters: govern agents built with other frameworks through steward's public facade.

Each adapter is a thin layer over `steward` (the facade) and lives behind an extra, e.g.
`pip install steward[langgraph]` for `steward.adapters.langgraph`.
"""
