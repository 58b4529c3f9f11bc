"""The facade behind `import steward`: govern the tool calls and model calls of an agent
loop that is not steward's own (steward/__init__.py exports it)."""
