"""Adapters: govern agents built with other frameworks through the public facade.

Each adapter is a thin layer over `steward.open` / `Steward` / `Run` and lives behind
its own extra (`pip install 'steward-governance[pydantic-ai]'`, ...): `steward.adapters.pydantic_ai`,
`steward.adapters.openai_agents`, `steward.adapters.langgraph`.
"""
