"""Load a spec file: YAML → typed model, with every error located by file, line and column.

PyYAML's composed node tree keeps a mark (line, column) for every key and value; we build
the plain data ourselves from it so we can (a) refuse duplicate keys, which YAML parsers
silently overwrite, and (b) map pydantic's error paths back to the exact place in the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from steward.core.errors import SpecError, SpecProblem
from steward.spec.models import AgentSpec, LoadedSpec, check_references

Loc = tuple[str | int, ...]
Marks = dict[Loc, tuple[int, int]]


MAX_NODES = 20_000  # a spec is small; this refuses alias bombs ("billion laughs")


class _Builder:
    """Plain data from the node tree, remembering where every key sits.

    Aliased nodes are built once and shared; an alias that refers to itself, or a tree
    whose expansion passes MAX_NODES, is a problem rather than a hang or a crash."""

    def __init__(self, marks: Marks, problems: list[tuple[Loc, str]]) -> None:
        self.marks = marks
        self.problems = problems
        self.built: dict[int, Any] = {}
        self.building: set[int] = set()
        self.sizes: dict[int, int] = {}
        self.cyclic = False
        self.scalars = yaml.SafeLoader("")

    def size(self, node: yaml.Node) -> int:
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self.building:
            self.cyclic = True
            return MAX_NODES + 1
        self.building.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(self.size(k) + self.size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(self.size(item) for item in node.value)
        self.building.discard(id(node))
        total = min(total, MAX_NODES + 1)
        self.sizes[id(node)] = total
        return total

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        key = id(node)
        if key in self.built:
            return self.built[key]
        if key in self.building:
            self.problems.append((path, "an alias refers to itself"))
            return None
        self.building.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                value: Any = self._mapping(node, path)
            elif isinstance(node, yaml.SequenceNode):
                value = [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            else:
                value = self.scalars.construct_object(node)
        finally:
            self.building.discard(key)
        self.built[key] = value
        return value

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.scalars.flatten_mapping(node)  # resolve `<<` merge keys (merged pairs first)
        except yaml.MarkedYAMLError as exc:
            self.problems.append((path, f"bad merge key: {exc.problem}"))
            return {}
        result: dict[Any, Any] = {}
        from_merge: set[Any] = set()
        for key_node, value_node in node.value:
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                self.marks.setdefault((*path, "?"), where)
                self.problems.append(((*path, "?"), "keys must be plain scalars"))
                continue
            key = self.scalars.construct_object(key_node)
            if not isinstance(key, str | int):
                self.problems.append((path, "keys must be strings"))
                continue
            child: Loc = (*path, key)
            merged = id(key_node) not in own
            if key in result:
                if merged:
                    continue  # an earlier merge source, or the mapping's own key, wins
                if key not in from_merge:
                    self.marks[child] = where
                    self.problems.append((child, f"duplicate key '{key}'"))
                    continue
            self.marks[child] = where
            (from_merge.add if merged else from_merge.discard)(key)
            result[key] = self.build(value_node, child)
        return result


def _locate(marks: Marks, loc: Loc) -> tuple[int, int]:
    """The mark of the deepest prefix of `loc` present in the file."""
    for end in range(len(loc), -1, -1):
        found = marks.get(loc[:end])
        if found is not None:
            return found
    return (1, 1)


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """Walk AgentSpec's fields along `loc` to the model that owns the last key."""
    model: Any = AgentSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _innermost_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: Any) -> str:
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = ", ".join(owner.model_fields) if owner is not None else "see the docs"
        return f"unknown key '{loc[-1]}' (expected one of: {allowed})"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if "input" in error and kind not in {"value_error", "assertion_error"}:
        shown = repr(error["input"])
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        message = f"{message}; got {shown}"
    return message


def load_spec_text(text: str, path: str = "<spec>") -> LoadedSpec:
    """Validate spec text. Raises SpecError listing every problem with its location."""
    problems: list[SpecProblem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(
            [SpecProblem(path, line, col, "", f"not valid YAML: {exc.problem or exc}")]
        ) from None
    if node is None:
        raise SpecError([SpecProblem(path, 1, 1, "", "the file is empty; expected a mapping")])
    marks: Marks = {}
    structural: list[tuple[Loc, str]] = []
    builder = _Builder(marks, structural)
    expanded = builder.size(node)
    if builder.cyclic:
        raise SpecError([SpecProblem(path, 1, 1, "", "an alias refers to itself")])
    if expanded > MAX_NODES:
        raise SpecError(
            [SpecProblem(path, 1, 1, "", f"the document expands to more than {MAX_NODES} nodes")]
        )
    data = builder.build(node, ())
    if structural:
        raise SpecError(
            [SpecProblem(path, *_locate(marks, loc), _field_path(loc), m) for loc, m in structural]
        )
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(path, 1, 1, "", "expected a mapping of spec fields")])
    try:
        spec = AgentSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(
                SpecProblem(path, *_locate(marks, loc), _field_path(loc), _describe(error))
            )
        raise SpecError(problems) from None
    for loc, message in check_references(spec):
        problems.append(SpecProblem(path, *_locate(marks, loc), _field_path(loc), message))
    if problems:
        raise SpecError(problems)
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return LoadedSpec(spec=spec, path=path, text=text, version=version)


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file. A missing or unreadable file is a SpecError too."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(str(path), 0, 0, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem(str(path), 0, 0, "", f"cannot read: {exc}")]) from None
    return load_spec_text(text, str(path))
