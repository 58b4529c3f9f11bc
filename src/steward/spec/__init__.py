"""Agent specs: YAML files validated into typed models, identified by content hash."""

from steward.spec.loader import load_spec, load_spec_text
from steward.spec.models import AgentSpec, LoadedSpec

__all__ = ["AgentSpec", "LoadedSpec", "load_spec", "load_spec_text"]
