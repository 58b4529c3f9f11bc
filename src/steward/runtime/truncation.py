"""What a run does with a response the provider cut off (core.messages.CUT_OFF).

Such a response is never a final answer and its tool calls never reach the gate (their
arguments may be cut mid-way). The agent's `limits.on_truncation` decides what follows
an answer stopped by the output limit: `escalate` (the default) ends the run `escalated`
with `model.truncated`; `continue` keeps the partial text and asks the model to go on,
bounded by max_steps. A content-filter stop always escalates (`model.content_filtered`):
asking again would be asking the model to work around its own filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from steward.core.messages import Message, ModelResponse

GO_ON = (
    "Your previous reply was cut off by the output token limit. Continue exactly where it "
    "stopped, without repeating anything, and finish the answer."
)


@dataclass(frozen=True, slots=True)
class CutOff:
    """Either a reason to escalate (`go_on` is None) or the turns that ask for the rest."""

    reason_code: str
    reason: str
    go_on: tuple[Message, ...] | None = None


def on_cut_off(response: ModelResponse, policy: str) -> CutOff:
    if response.finish_reason == "content_filter":
        return CutOff(
            "model.content_filtered", f"{response.model} stopped its answer: content filter"
        )
    reason = f"{response.model} was cut off by the output token limit (finish_reason 'length')"
    if policy != "continue":
        return CutOff("model.truncated", reason)
    # the partial text stays in the conversation; the cut tool calls do not
    return CutOff(
        "model.truncated", reason, (Message("assistant", response.text), Message("user", GO_ON))
    )
