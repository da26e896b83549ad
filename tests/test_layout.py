"""The house's rules (issue 24), kept true: a top level that names the architecture, modules a
reader can hold in mind, only the command line knows click, and only public APIs of httpx and
httpcore (their private names move between releases, silently)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "backfill"
MOST_LOOSE_MODULES = 8
MOST_LINES = 400
PRIVATE_OWNERS = ("httpx", "httpcore")


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_few_modules_stay_loose_at_the_top() -> None:
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= MOST_LOOSE_MODULES, loose


def test_no_module_outside_the_sandbox_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if "sandbox" not in path.relative_to(PACKAGE).parts
        and (lines := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert not long, long


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_command_line_knows_click() -> None:
    knowing = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] != "cli"
        and any(name.split(".")[0] == "click" for name in _imported(_tree(path)))
    ]
    assert not knowing, knowing


def _private_uses(tree: ast.Module) -> list[str]:
    found = [
        name
        for name in _imported(tree)
        if name.split(".")[0] in PRIVATE_OWNERS
        and any(part.startswith("_") for part in name.split(".")[1:])
    ]
    for node in ast.walk(tree):  # httpx._something, httpcore._something
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in PRIVATE_OWNERS
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_private_name_of_httpx_or_httpcore_is_used() -> None:
    uses = {
        str(path.relative_to(PACKAGE)): private
        for path in _modules()
        if (private := _private_uses(_tree(path)))
    }
    assert not uses, uses


def test_the_private_name_check_finds_what_it_looks_for() -> None:
    tree = ast.parse(
        "import httpx\nfrom httpcore._backends.anyio import AnyIOBackend\n"
        "pool = httpx._transports.default\n"
    )
    assert sorted(_private_uses(tree)) == [
        "httpcore._backends.anyio",
        "httpcore._backends.anyio.AnyIOBackend",
        "httpx._transports",
    ]
