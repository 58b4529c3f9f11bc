"""Adapters that govern agents built with other frameworks, each a thin layer over the
public facade (`import steward`) and each behind its own extra."""
