"""The docs stay true: the CLI reference is the commands' own, and every relative link
in the README, ARCHITECTURE.md and docs/ leads somewhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _commands(command: click.Command, ctx: click.Context):
    yield ctx.command_path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            yield from _commands(sub, click.Context(sub, info_name=name, parent=ctx))


def test_every_command_and_option_is_in_the_generated_cli_reference():
    from vida.cli import main

    check = subprocess.run([sys.executable, str(ROOT / "bin" / "cli_reference"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    reference = (ROOT / "docs" / "cli.md").read_text()
    seen = 0
    for path, command, ctx in _commands(main, click.Context(main, info_name="vida-batch")):
        assert f"`{path}`" in reference, path
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and param.name != "help":
                assert any(f"`{flag}" in reference for flag in param.opts), (path, param.opts)
                seen += 1
    assert seen > 100  # the walk reached every group's commands


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text, fenced = [], False
    for line in path.read_text().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            text.append(_slug(line.lstrip("#")))
    return set(text)


def test_every_relative_link_resolves():
    broken = []
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            resolved = (doc.parent / file).resolve() if file else doc
            if not resolved.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
