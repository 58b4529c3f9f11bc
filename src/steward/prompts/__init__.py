"""Prompts and agent versions as people compare them: the difference between two
versions of an agent, its spec and its prompt file (prompt files themselves are loaded
with the spec, spec/loader.py)."""
