"""Models: the protocol the runner speaks, and the embedded `rules` model."""

from steward.models.protocol import Model, ModelRequest
from steward.models.rules import RulesModel

__all__ = ["Model", "ModelRequest", "RulesModel"]
