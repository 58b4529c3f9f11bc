"""Egress allowlist: where a tool may send data.

A tool declares which of its arguments are destinations (`@tool(destinations=("to",))`,
or a parameter whose JSON Schema `format` is uri, email, hostname and the like); the spec
lists the destinations an agent may reach (`egress: allow: [...]`). A pattern is
  example.com        that host, or an email address at it
  *.example.com      any host under it (not example.com itself), or an address at one
  ops@example.com    that address
  re:<regex>         a value the regex matches whole (account numbers, IBAN prefixes)
Hosts and addresses compare case-insensitively. A URL is judged by its host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

DESTINATION_FORMATS = frozenset(
    {"uri", "url", "iri", "uri-reference", "email", "idn-email", "hostname", "idn-hostname"}
)


def schema_destinations(parameters: dict[str, Any]) -> frozenset[str]:
    """Top-level parameters whose schema format names a destination (also in arrays)."""
    found: set[str] = set()
    for name, prop in (parameters.get("properties") or {}).items():
        for schema in (prop, prop.get("items") or {}, *prop.get("anyOf", ())):
            if isinstance(schema, dict) and schema.get("format") in DESTINATION_FORMATS:
                found.add(name)
    return frozenset(found)


def check_pattern(pattern: str) -> str:
    """The pattern, or ValueError saying why it is not one."""
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise ValueError(f"egress pattern {pattern!r} does not compile: {exc}") from None
    elif not pattern or any(c.isspace() for c in pattern) or "/" in pattern:
        raise ValueError(f"egress pattern {pattern!r} is not a host, *.host, address or re:…")
    return pattern


def _host(value: str) -> str:
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    return value.strip().lower().rstrip(".")


def allowed(value: str, patterns: Iterable[str]) -> bool:
    host = _host(value)
    domain = host.rpartition("@")[2] if "@" in host and "://" not in value else host
    for pattern in patterns:
        if pattern.startswith("re:"):
            if re.fullmatch(pattern[3:], value):
                return True
            continue
        lowered = pattern.lower()
        if "@" in lowered:
            if host == lowered:
                return True
        elif lowered.startswith("*."):
            if fnmatchcase(domain, lowered) and domain != lowered[2:]:
                return True
        elif domain == lowered:
            return True
    return False


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _values(item)
    elif value is not None:
        yield str(value)


def outside(
    arguments: dict[str, Any], destinations: Iterable[str], patterns: tuple[str, ...]
) -> list[tuple[str, str]]:
    """(argument, value) of every destination the patterns do not allow."""
    return [
        (name, value)
        for name in destinations
        for value in _values(arguments.get(name))
        if not allowed(value, patterns)
    ]
