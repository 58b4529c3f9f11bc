"""The README's examples run, so the README stays true (the model: pydantic-ai's
tests/test_examples.py; a small extractor instead of pytest-examples, which runs Python
only, and here shell sessions run too).

Every fenced block is found wherever it is, so blocks other sections add are tested
without touching this file:

- ```python blocks run one by one, each in a fresh interpreter in a temporary directory
  (top-level `await` allowed), bounded in time. A traceback names README.md and its line.
- ```console / ```shell / ```bash blocks: each `$ ` line is a command (in a shell or
  bash block without prompts, each line that is not a comment), run like a reader
  following the README in one working directory. The Quickstart's `make demo` is
  `steward demo` in a fresh .venv, so the session starts with `steward demo`. Lines
  after a command that do not start with `$ ` are output it must print (whitespace
  aside). `steward` and `.venv/bin/steward` run this checkout's steward; `export A=B`
  sets a variable for the rest of its block; placeholders are filled from the session:
  `stw_...` (the last token printed), `NAME_TOKEN` (the token `keys create --name name`
  printed), `RUN_ID` (the newest run), `APPROVAL_ID` (a pending request nobody has
  used yet in the session). `steward serve` is started on a free port, must answer
  /readyz, and is stopped. Any other command fails the test: run it or skip the block.
  A command that documents a non-zero exit ends with `# exits N`. The session's
  directory holds a copy of `examples/`, as a reader at the repository root has.
- `<!-- skip-example: reason -->` right before a block skips it (keep these few; say why).
- `<!-- example-file: NAME -->` right before a block writes its text to NAME in the
  shell session's directory (a spec the commands after it read).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT = 120.0  # seconds for one command or one Python block
SERVER_READY = 30.0

SHELL_LANGS = {"console", "shell", "bash", "sh"}
_FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(skip-example|example-file)\s*:\s*(.*?)\s*-->\s*$")
_TOKEN = re.compile(r"stw_[A-Za-z0-9_\-]{16,}")
_EXITS = re.compile(r"\s+#\s*exits\s+(\d+)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # README line of the block's first line of content
    text: str
    skip: str | None = None
    file: str | None = None

    @property
    def id(self) -> str:
        return f"{self.lang}-L{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """Fenced blocks with their language, first line and directives."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        directives: dict[str, str] = {}
        j = i - 1
        while j >= 0 and (match := _DIRECTIVE.match(lines[j])):
            directives[match.group(1)] = match.group(2)
            j -= 1
        end = i + 1
        while end < len(lines) and not _FENCE.match(lines[end]):
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md:{i + 1}: a code block is never closed")
        text = "\n".join(lines[i + 1 : end]) + "\n"
        out.append(
            Block(
                opening.group(1).lower(),
                i + 2,
                text,
                directives.get("skip-example"),
                directives.get("example-file"),
            )
        )
        i = end + 1
    return out


BLOCKS = read_blocks(README)
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SHELL = [b for b in BLOCKS if b.lang in SHELL_LANGS or b.file]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    return env


def test_the_readme_has_examples() -> None:
    assert PYTHON and SHELL


def test_skips_say_why() -> None:
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip.split()) >= 3, f"README.md:{block.line}: say why it is skipped"


# -- Python ------------------------------------------------------------------------------

_BOOT = """
import ast, asyncio, sys
path, first = sys.argv[1], int(sys.argv[2])
source = "\\n" * (first - 1) + open("example.py", encoding="utf-8").read()
code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_example(block: Block, tmp_path: Path) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    (tmp_path / "example.py").write_text(block.text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", _BOOT, str(README), str(block.line)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"README.md:{block.line}: the example failed\n{done.stderr[-3000:]}"
    )


# -- shell -------------------------------------------------------------------------------


@dataclass
class Session:
    """One working directory where the README's commands run in order."""

    cwd: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    last_token: str | None = None
    used_approvals: set[str] = field(default_factory=set)

    def steward(self, args: list[str], where: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [sys.executable, "-c", "from steward.cli.main import main; main()", *args],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{where}: `steward {shlex.join(args)}` ran over {TIMEOUT:.0f} s")

    # -- placeholders --------------------------------------------------------------------

    def fill(self, arg: str, where: str) -> str:
        if "stw_..." in arg:
            assert self.last_token, f"{where}: `stw_...` but no key was created before it"
            arg = arg.replace("stw_...", self.last_token)
        for name in re.findall(r"\b([A-Z]+)_TOKEN\b", arg):
            token = self.tokens.get(name.lower())
            assert token, f"{where}: {name}_TOKEN but no `keys create --name {name.lower()}`"
            arg = arg.replace(f"{name}_TOKEN", token)
        if "RUN_ID" in arg:
            arg = arg.replace("RUN_ID", self._newest_run(where))
        if "APPROVAL_ID" in arg:
            arg = arg.replace("APPROVAL_ID", self._pending_approval(where))
        unknown = re.findall(r"\b[A-Z]+_ID\b", arg)
        assert not unknown, f"{where}: no value for the placeholder {unknown[0]}"
        return arg

    def _db(self) -> object:
        from steward.store import Database

        return Database.open(f"sqlite:///{self.cwd / '.steward' / 'steward.db'}", create=False)

    def _newest_run(self, where: str) -> str:
        from steward.store import Database
        from steward.store.runs import list_runs

        db = self._db()
        assert isinstance(db, Database)
        try:
            rows = list_runs(db, limit=1)
        finally:
            db.close()
        assert rows, f"{where}: RUN_ID but the database holds no run"
        return rows[0].id

    def _pending_approval(self, where: str) -> str:
        from steward.store import Database
        from steward.store.approvals import list_approvals

        db = self._db()
        assert isinstance(db, Database)
        try:
            pending = [a.id for a in list_approvals(db, "pending", limit=1000)]
        finally:
            db.close()
        fresh = [a for a in pending if a not in self.used_approvals]
        assert fresh, f"{where}: APPROVAL_ID but no pending request is left"
        self.used_approvals.add(fresh[0])
        return fresh[0]

    # -- commands ------------------------------------------------------------------------

    def run(self, command: str, expected: list[str], where: str) -> None:
        wanted = 0  # a documented non-zero exit: `$ steward explain ...   # exits 4`
        said = _EXITS.search(command)
        if said:
            wanted, command = int(said.group(1)), command[: said.start()]
        words = shlex.split(command, comments=True)
        if not words:
            return
        if words[0] == "export" and len(words) == 2 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            self.env[name] = self.fill(value, where)
            return
        if words[0] not in ("steward", ".venv/bin/steward"):
            pytest.fail(
                f"{where}: the test cannot run `{command}`: run it here, or mark the block "
                "<!-- skip-example: reason -->"
            )
        args = [self.fill(arg, where) for arg in words[1:]]
        if args and args[0] == "serve":
            self._serve(args, where)
            return
        done = self.steward(args, where)
        output = done.stdout + done.stderr
        assert done.returncode == wanted, (
            f"{where}: `{command}` exited {done.returncode}, not {wanted}\n{output}"
        )
        if args[:2] == ["keys", "create"]:
            token = _TOKEN.search(output)
            assert token, f"{where}: `{command}` printed no token"
            self.last_token = token.group(0)
            if "--name" in args:
                self.tokens[args[args.index("--name") + 1]] = token.group(0)
        flat = " ".join(output.split())
        for line in expected:
            want = " ".join(line.split())
            assert want in flat, f"{where}: `{command}` did not print\n  {line}\ngot:\n{output}"

    def _serve(self, args: list[str], where: str) -> None:
        """Start the server on a free port, wait until it is ready, stop it."""
        if "--port" in args:
            del args[args.index("--port") : args.index("--port") + 2]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        args += ["--port", str(port)]
        server = subprocess.Popen(
            [sys.executable, "-c", "from steward.cli.main import main; main()", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + SERVER_READY
            ready = False
            while time.monotonic() < deadline and server.poll() is None and not ready:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        ready = r.status == 200
                except OSError:
                    time.sleep(0.2)
        finally:
            server.terminate()
            try:
                output, _ = server.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                output, _ = server.communicate()
        assert ready, f"{where}: `steward {shlex.join(args)}` never answered /readyz\n{output}"


def _commands(block: Block) -> Iterator[tuple[int, str, list[str]]]:
    """(README line, command, expected output lines) for each `$ ` line of a block; in a
    bash/sh/shell block with no `$ ` prompt, every line that is not a comment."""
    lines = block.text.splitlines()
    if block.lang != "console" and not any(line.startswith("$ ") for line in lines):
        for i, line in enumerate(lines):
            if line.strip() and not line.lstrip().startswith("#"):
                yield block.line + i, line, []
        return
    for i, line in enumerate(lines):
        if not line.startswith("$ "):
            continue
        expected = []
        for after in lines[i + 1 :]:
            if after.startswith("$ "):
                break
            if after.strip():
                expected.append(after)
        yield block.line + i, line[2:], expected


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    cwd = tmp_path_factory.mktemp("readme")
    # as a reader at the repository root: examples/ and the src/ its files point into
    shutil.copytree(ROOT / "examples", cwd / "examples")
    (cwd / "src").symlink_to(ROOT / "src")
    shell = Session(cwd, _env())
    done = shell.steward(["demo"], "README.md (the Quickstart's demo)")
    assert done.returncode == 0, done.stdout + done.stderr
    return shell


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_example(block: Block, session: Session) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    if block.file is not None:
        (session.cwd / block.file).write_text(block.text, encoding="utf-8")
        if block.lang not in SHELL_LANGS:
            return
    commands = list(_commands(block))
    assert commands, f"README.md:{block.line}: a {block.lang} block with no `$ ` command"
    env = dict(session.env)
    try:
        for line, command, expected in commands:
            session.run(command, expected, f"README.md:{line}")
    finally:
        session.env = env  # an export lasts until the end of its block
