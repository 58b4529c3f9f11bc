"""The registry resolves the tool names a spec lists. An unknown name refuses to load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from steward.core.errors import UnknownToolError
from steward.tools.base import Tool


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool) -> Tool:
        if item.name in self._tools and self._tools[item.name] is not item:
            raise ValueError(f"a tool named '{item.name}' is already registered")
        self._tools[item.name] = item
        return item

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def names(self) -> list[str]:
        return sorted(self._tools)

    def resolve(self, names: Iterable[str]) -> dict[str, Tool]:
        """Every name, or UnknownToolError naming all the missing ones."""
        wanted = list(names)
        missing = [n for n in wanted if n not in self._tools]
        if missing:
            known = ", ".join(self.names()) or "none"
            raise UnknownToolError(f"unknown tool(s): {', '.join(missing)} (registered: {known})")
        return {n: self._tools[n] for n in wanted}
