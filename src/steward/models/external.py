"""The model of an agent whose reasoning lives outside steward (`model: external`).

Its program calls its own model and proposes tool calls through the `steward` facade
(steward/embed/), which records each of its model calls (priced, budgeted, traced).
Steward itself never asks this model anything: a built-in runner that tries is refused
with `model.external`, never silently answered.
"""

from __future__ import annotations

from steward.core.errors import ModelError
from steward.core.messages import ModelResponse
from steward.models.protocol import ModelRequest

EXTERNAL_CODE = "model.external"


class ExternalModel:
    name = "external"

    async def respond(self, request: ModelRequest) -> ModelResponse:
        del request
        raise ModelError(
            "this agent's model is external: its own program drives it through the steward "
            "facade (steward.open(...).start_run(...)); steward's runner cannot",
            code=EXTERNAL_CODE,
        )


def is_external(model: object) -> bool:
    return isinstance(model, ExternalModel)
