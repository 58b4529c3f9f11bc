"""Core types: messages, tool calls, decisions, events and errors. No I/O, no imports of ours."""
