"""Bundled data and local systems for the support-desk demo agent."""
