"""The kubectl commands in the examples' comments can be pasted as they are: the files
they name exist, applies are server-side and say the namespace, and annotate/label lines
that would otherwise fail on a second run say --overwrite."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [*sorted((ROOT / "examples").rglob("*.yaml")), ROOT / "examples" / "README.md"]
# Files that name their own namespace or hold cluster-scoped objects: applied without -n.
SELF_NAMESPACED = {"examples/prerequisites/gateway.yaml", "examples/slo-templates/"}
COMMAND = re.compile(r"^(?:#\s*)?(?:#\s*or:\s*)?(kubectl .*)$")


def _commands(path: Path) -> list[str]:
    """The kubectl command lines of a file, continuation lines joined."""
    commands: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if pending:
            line = pending + " " + line.lstrip("#").strip()
            pending = ""
        match = COMMAND.match(line)
        if match is None:
            continue
        command = match.group(1).split(" #")[0].strip()
        if command.endswith("\\"):
            pending = command[:-1].strip()
            continue
        commands.append(command)
    return commands


COMMANDS = [(path, command) for path in FILES for command in _commands(path)]


def test_the_examples_have_commands() -> None:
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(
    ("path", "command"),
    COMMANDS,
    ids=[f"{p.relative_to(ROOT)}:{c[:60]}" for p, c in COMMANDS],
)
def test_command_is_copy_pasteable(path: Path, command: str) -> None:
    words = shlex.split(command)
    verb = words[1]
    where = f"{path.relative_to(ROOT)}: {command}"
    for index, word in enumerate(words):
        if word == "-f" and words[index + 1].startswith("examples/"):
            assert (ROOT / words[index + 1]).exists(), f"{where}: no such file"
    if verb == "apply":
        assert "--server-side" in words, f"{where}: apply without --server-side"
        files = {words[i + 1] for i, w in enumerate(words) if w == "-f"}
        if not files <= SELF_NAMESPACED:
            assert "-n" in words, f"{where}: apply without -n"
    if verb == "annotate":
        assert "-n" in words, f"{where}: annotate without -n"
        assert "--overwrite" in words, f"{where}: annotate without --overwrite"
    if verb == "label":
        kind = words[2]
        if kind != "namespace":
            assert "-n" in words, f"{where}: label without -n"
        if kind == "namespace":
            assert "--overwrite" in words, f"{where}: label namespace without --overwrite"
    if verb == "create" and words[2] == "secret":
        assert "-n" in words, f"{where}: create secret without -n"
