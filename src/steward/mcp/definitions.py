"""What steward pins of an MCP tool, what it assumes of it, and what it reads of its results.

A definition is the tool's name, description, input schema and annotations; its pin is
the SHA-256 of their canonical JSON, so any change to any of them is a new definition.
Annotations are the server's word: the tool is a write that is never retried unless the
spec trusts the server's annotations or says the tool's effect itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import mcp_types as types

from steward.core.errors import ToolExecutionError
from steward.security.scanners import Scanner
from steward.spec.models import McpServer
from steward.tools.base import Effect

TOOL_ERROR = "mcp.tool_error"  # the tool ran and reported an error (isError)


def definition_of(tool: types.Tool) -> dict[str, Any]:
    annotations = (
        tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
        if tool.annotations is not None
        else None
    )
    return {
        "name": tool.name,
        "description": tool.description or "",
        "inputSchema": tool.input_schema,
        "annotations": annotations,
    }


def canonical(definition: dict[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def effect_of(tool: types.Tool, config: McpServer) -> tuple[Effect, bool]:
    """(effect, idempotent): the spec's word for the tool, else the server's annotations
    when the spec trusts them, else a write that is not idempotent."""
    override = config.tools.get(tool.name)
    if override is not None:
        return Effect(override.effect), override.idempotent
    hints = tool.annotations
    if config.trust_annotations and hints is not None:
        return (Effect.READ if hints.read_only_hint else Effect.WRITE), bool(hints.idempotent_hint)
    return Effect.WRITE, False


def poisoning(definition: dict[str, Any], detector: Scanner | None) -> str:
    """The injection findings in the text a model would read of this tool (its description
    and the descriptions inside its input schema), described; "" when there are none. A
    detector that fails is a finding (fail closed)."""
    if detector is None:
        return ""
    text = {"description": definition["description"], "inputSchema": definition["inputSchema"]}
    try:
        scanned = detector.scan(text)
    except Exception as exc:
        return f"the description could not be scanned: {type(exc).__name__}: {exc}"
    if not scanned.findings:
        return ""
    return "; ".join(
        f"{f.kind} by {f.detector} (score {f.score:.2f}) at {f.path}[{f.start}:{f.end}]"
        for f in scanned.details
    ) or ", ".join(scanned.findings)


def result_value(result: types.CallToolResult, clean: Callable[[str], str]) -> Any:
    """What the agent reads of a tool's result: its structured content when it has one,
    else its text (one block: the string; several: a list). An error result raises with
    its text passed through `clean` (the error reaches the model, and is untrusted too)."""
    blocks: list[Any] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            blocks.append(block.text)
        else:
            blocks.append(block.model_dump(mode="json", by_alias=True, exclude_none=True,
                                           exclude={"data", "blob"}))  # fmt: skip
    if result.is_error:
        text = " ".join(b for b in blocks if isinstance(b, str)) or "the tool reported an error"
        raise ToolExecutionError(clean(text), code=TOOL_ERROR, retryable=False)
    if result.structured_content is not None:
        return result.structured_content
    return blocks[0] if len(blocks) == 1 else blocks
