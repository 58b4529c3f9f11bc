"""Load a spec file: YAML → typed model, with every error located by file, line and column.

PyYAML's composed node tree keeps a mark (line, column) for every key and value; we build
the plain data ourselves from it so we can (a) refuse duplicate keys, which YAML parsers
silently overwrite, (b) map pydantic's error paths back to the exact place in the file,
and (c) turn every value YAML cannot construct (an explicit tag such as `!!int abc`,
`!!python/object:...`, an impossible date) into a located problem, never a traceback.
Only the plain collections `!!map` and `!!seq` are accepted as collection tags.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, RootModel, ValidationError

from steward.core.errors import SpecError, SpecFileMissing, SpecProblem
from steward.spec.models import AgentSpec, LoadedSpec, PromptFile, PromptSource, check_references

Loc = tuple[str | int, ...]
Mark = tuple[int, int]
Marks = dict[Loc, Mark]
Problem = tuple[Loc, Mark, str]  # where in the data, where in the file, what is wrong


MAX_NODES = 20_000  # a spec is small; this refuses alias bombs ("billion laughs")
MAX_DEPTH = 64  # a spec nests about 8 deep; deeper (in the text or through aliases) is refused
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _mark_of(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


class _Builder:
    """Plain data from the node tree, remembering where every key sits.

    Aliased nodes are built once and shared; an alias that refers to itself, or a tree
    whose expansion passes MAX_NODES, is a problem rather than a hang or a crash."""

    def __init__(self, marks: Marks, problems: list[Problem]) -> None:
        self.marks = marks
        self.problems = problems
        self.built: dict[int, Any] = {}
        self.building: set[int] = set()
        self.sizes: dict[int, int] = {}
        self.cyclic = False
        self.too_deep: yaml.Node | None = None  # the first node nested deeper than MAX_DEPTH
        self.scalars = yaml.SafeLoader("")

    def size(self, node: yaml.Node, depth: int = 0) -> int:
        """Nodes after alias expansion; stops at a cycle or past MAX_DEPTH (aliases can nest
        deeper than the text does), so neither this nor `build` can exhaust the stack."""
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in self.building:
            self.cyclic = True
            return MAX_NODES + 1
        if depth > MAX_DEPTH:
            self.too_deep = self.too_deep or node
            return MAX_NODES + 1
        self.building.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(self.size(k, depth + 1) + self.size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(self.size(item, depth + 1) for item in node.value)
        self.building.discard(id(node))
        total = min(total, MAX_NODES + 1)
        self.sizes[id(node)] = total
        return total

    def build(self, node: yaml.Node, path: Loc) -> Any:
        self.marks.setdefault(path, _mark_of(node))
        key = id(node)
        if key in self.built:
            return self.built[key]
        if key in self.building:
            self.problem(node, path, "an alias refers to itself")
            return None
        self.building.add(key)
        try:
            if isinstance(node, yaml.ScalarNode):
                value: Any = self.scalar(node, path)
            elif node.tag not in _COLLECTION_TAGS:
                self.problem(node, path, f"the tag {_shown_tag(node.tag)} is not supported")
                value = None
            elif isinstance(node, yaml.MappingNode):
                value = self._mapping(node, path)
            else:
                value = [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.building.discard(key)
        self.built[key] = value
        return value

    def problem(self, node: yaml.Node, path: Loc, message: str) -> None:
        self.problems.append((path, _mark_of(node), message))

    def scalar(self, node: yaml.ScalarNode, path: Loc) -> Any:
        """The scalar's value, or None and a problem: PyYAML's constructors raise anything
        from ConstructorError to ValueError, KeyError or AttributeError on odd input."""
        try:
            return self.scalars.construct_object(node)
        except Exception as exc:
            unknown = "could not determine a constructor" in str(getattr(exc, "problem", ""))
            tag = _shown_tag(node.tag)
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self.problem(
                node,
                path,
                f"the tag {tag} is not supported"
                if unknown
                else f"{shown!r} is not a valid {tag.removeprefix('!!')} (quote it if it is text)",
            )
            return None

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.scalars.flatten_mapping(node)  # resolve `<<` merge keys (merged pairs first)
        except yaml.MarkedYAMLError as exc:
            self.problem(node, path, f"bad merge key: {exc.problem}")
            return {}
        result: dict[Any, Any] = {}
        from_merge: set[Any] = set()
        for key_node, value_node in node.value:
            where = _mark_of(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, (*path, "?"), "keys must be plain scalars")
                continue
            key = self.scalar(key_node, (*path, "?"))
            if not isinstance(key, str | int):
                if key is not None:
                    self.problem(key_node, (*path, "?"), "keys must be strings")
                continue
            child: Loc = (*path, key)
            merged = id(key_node) not in own
            if key in result:
                if merged:
                    continue  # an earlier merge source, or the mapping's own key, wins
                if key not in from_merge:
                    self.marks[child] = where
                    self.problem(key_node, child, f"duplicate key '{key}'")
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


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Walk the root model's fields along `loc` to the model that owns the last key."""
    model: Any = _unrooted(root)
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _unrooted(_innermost_model(field.annotation))
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unrooted(model: Any) -> Any:
    """A RootModel (a file that is a list of records) stands for the model it holds."""
    if isinstance(model, type) and issubclass(model, RootModel):
        return _innermost_model(model.model_fields["root"].annotation)
    return model


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


def _describe(root: type[BaseModel], error: Any) -> str:
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
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


def _first_too_deep(text: str) -> Mark:
    """Where the text first nests deeper than MAX_DEPTH, by an iterative scan of the parse
    events (the composer recurses, so it cannot be asked)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                mark = event.start_mark
                if depth > MAX_DEPTH and mark is not None:
                    return (mark.line + 1, mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return (1, 1)


def _compose(text: str, path: str) -> yaml.Node | None:
    too_deep = f"nested deeper than {MAX_DEPTH} levels"
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"not valid YAML: {exc.problem or exc}"
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - text.rfind("\n", 0, exc.position)
        message = f"not valid YAML: {exc.reason} ({exc.character!r})"
    except yaml.YAMLError as exc:
        line, col, message = 1, 1, f"not valid YAML: {exc}"
    except RecursionError:
        (line, col), message = _first_too_deep(text), too_deep
    raise SpecError([SpecProblem(path, line, col, "", message)])


M = TypeVar("M", bound=BaseModel)


def load_located(
    text: str,
    path: str,
    model: type[M],
    expected: type[dict[Any, Any] | list[Any]] = dict,
    what: str = "a mapping of fields",
) -> tuple[M, Marks]:
    """Validate YAML text as `model` (a mapping, or with expected=list a RootModel of a
    list: `what` names it), with where every key sits. Raises SpecError listing every
    problem located by file, line, column and field: the one way steward reads a YAML
    file it was given."""
    node = _compose(text, path)
    if node is None:
        shape = "a mapping" if expected is dict else "a list"
        raise SpecError([SpecProblem(path, 1, 1, "", f"the file is empty; expected {shape}")])
    marks: Marks = {}
    structural: list[Problem] = []
    builder = _Builder(marks, structural)
    expanded = builder.size(node)
    if builder.cyclic:
        raise SpecError([SpecProblem(path, 1, 1, "", "an alias refers to itself")])
    if builder.too_deep is not None:
        where = _mark_of(builder.too_deep)
        raise SpecError([SpecProblem(path, *where, "", f"nested deeper than {MAX_DEPTH} levels")])
    if expanded > MAX_NODES:
        raise SpecError(
            [SpecProblem(path, 1, 1, "", f"the document expands to more than {MAX_NODES} nodes")]
        )
    data = builder.build(node, ())
    if structural:
        raise SpecError(
            [SpecProblem(path, *mark, _field_path(loc), m) for loc, mark, m in structural]
        )
    if not isinstance(data, expected):
        raise SpecError([SpecProblem(path, 1, 1, "", f"expected {what}")])
    try:
        return model.model_validate(data), marks
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(
                SpecProblem(path, *_locate(marks, loc), _field_path(loc), _describe(model, error))
            )
        raise SpecError(problems) from None


def locate(marks: Marks, loc: Loc) -> Mark:
    """The line and column of the deepest part of `loc` present in the file."""
    return _locate(marks, loc)


def field_path(loc: Loc) -> str:
    """`(0, "context", "autonomy")` → `[0].context.autonomy`."""
    return _field_path(loc)


def load_spec_text(
    text: str, path: str = "<spec>", *, prompt_text: str | None = None
) -> LoadedSpec:
    """Validate spec text. Raises SpecError listing every problem with its location.

    A spec with a `prompt_file` reads that file relative to `path`, unless `prompt_text`
    gives its text (an agent version rebuilt from the store). The prompt's system prompt,
    temperature and max_tokens become the spec's; the version hashes both texts."""
    spec, marks = load_located(text, path, AgentSpec, what="a mapping of spec fields")
    problems = [
        SpecProblem(path, *_locate(marks, loc), _field_path(loc), message)
        for loc, message in check_references(spec)
    ]
    if problems:
        raise SpecError(problems)
    if spec.prompt_file is None:
        version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        return LoadedSpec(spec=spec, path=path, text=text, version=version)
    where = _locate(marks, ("prompt_file",))
    source = _prompt_source(spec.prompt_file, path, prompt_text, where)
    found = source.prompt
    if found.model is not None and found.model != spec.model.name:
        raise SpecError([SpecProblem(path, *where, "prompt_file",
                                     f"the prompt is written for model '{found.model}', "
                                     f"the spec runs '{spec.model.name}'")])  # fmt: skip
    limits = spec.limits
    if found.max_tokens is not None:
        limits = limits.model_copy(update={"max_output_tokens": found.max_tokens})
    spec = spec.model_copy(
        update={"prompt": found.system_prompt, "temperature": found.temperature, "limits": limits}
    )
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(b"\0prompt\0" + source.text.encode("utf-8"))
    return LoadedSpec(spec=spec, path=path, text=text, version=digest.hexdigest()[:16],
                      prompt=source)  # fmt: skip


def _prompt_source(ref: str, spec_path: str, text: str | None, where: Mark) -> PromptSource:
    """The prompt file a spec names: read beside the spec, or the stored text."""
    file = Path(spec_path).parent / ref
    if text is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot read: {exc}"
            raise SpecError(
                [SpecProblem(spec_path, *where, "prompt_file", f"{file}: {reason}")]
            ) from None
    prompt, _ = load_located(text, str(file), PromptFile, what="a mapping of prompt fields")
    return PromptSource(path=ref, text=text, prompt=prompt)


def read_located(path: str | Path) -> str:
    """A YAML file's text; a missing file is SpecFileMissing, an unreadable one a
    SpecError, both located at the file (spec files, evaluation suites)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecFileMissing([SpecProblem(str(path), 0, 0, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecProblem(str(path), 0, 0, "", f"cannot read: {exc}")]) from None


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file. A missing or unreadable file is a SpecError too."""
    return load_spec_text(read_located(path), str(path))
