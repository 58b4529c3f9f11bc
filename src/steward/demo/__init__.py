"""Bundled data and local systems for the support-desk demo agent, and the multi-agent
demo's agents (their specs are package data here, `<name>_agent.yaml`)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SINGLE_SPEC = HERE / "support_agent.yaml"
# the multi-agent demo (`steward demo --multi-agent`): the entry point first
TRIAGE = "triage"
MULTI_AGENT = (TRIAGE, "orders", "refunds", "account", "escalation")
MULTI_AGENT_SPECS = tuple(HERE / f"{name}_agent.yaml" for name in MULTI_AGENT)
