"""Checks on untrusted JSON-like values (tool arguments, request bodies): how deep they nest
and whether every number is a number. One iterative walk, so no input can exhaust the stack.

Depth counts containers, the outermost included: `1` is 0 deep, `{}` and `[1]` are 1 deep,
`{"a": [1]}` is 2 deep.
"""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_DEPTH = 32  # deeper than any real tool argument; far below any parser's recursion


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def json_problem(
    value: Any, *, max_depth: int | None = MAX_JSON_DEPTH, finite: bool = True, path: str = ""
) -> str | None:
    """None if `value` nests at most `max_depth` containers deep (None: unbounded) and, when
    `finite`, holds no NaN or ±Infinity; else a one-line reason naming the path."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, float):
            if finite and not math.isfinite(item):
                return f"{where or 'value'}: {item} is not a finite number"
            continue
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list | tuple):
            children = enumerate(item)
        else:
            continue
        if max_depth is not None and depth >= max_depth:
            return f"{where or 'value'}: nested deeper than {max_depth} levels"
        # reversed, so the first problem reported is the first in document order
        stack.extend(reversed([(child, _join(where, key), depth + 1) for key, child in children]))
    return None
