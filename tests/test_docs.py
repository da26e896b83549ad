"""README.md and docs/ document every command, option, environment variable and settings key;
their links resolve, the command lines they show parse, and the README stays short."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from backfill.cli import main
from backfill.config.settings import SECRET_VARIABLES, declared
from backfill.config.settings_file import TENANT_KEYS

SETTINGS = [where for _, where in declared()]

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
COMMANDS_PAGE = (DOCS / "commands.md").read_text()  # one section per command
CONFIGURATION_PAGE = (DOCS / "configuration.md").read_text()  # every setting
CONTEXT = click.Context(main)
COMMANDS = {name: main.get_command(CONTEXT, name) for name in main.list_commands(CONTEXT)}
README_MAX_LINES = 250  # what a newcomer reads in five minutes; the reference is in docs/


def test_there_are_commands() -> None:
    assert set(COMMANDS) == {"run", "import", "status", "check", "verify", "sandbox"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_section(name: str) -> None:
    assert f"\n## `auth0-backfill {name}`\n" in COMMANDS_PAGE


def test_every_command_section_is_of_a_command() -> None:
    sections = re.findall(r"^#+ `auth0-backfill (\S+)`", COMMANDS_PAGE, re.M)
    assert sorted(sections) == sorted(COMMANDS)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (name, option)
        for name, command in sorted(COMMANDS.items())
        for parameter in command.params  # type: ignore[union-attr]
        if isinstance(parameter, click.Option) and parameter.name != "help"
        for option in parameter.opts + parameter.secondary_opts
        if option.startswith("--")
    ],
)
def test_every_option_is_documented_in_its_command_section(command: str, option: str) -> None:
    section = COMMANDS_PAGE.split(f"\n## `auth0-backfill {command}`\n")[1]
    section = section.split("\n## ")[0].split("\n### ")[0]
    assert re.search(rf"`{re.escape(option)}[ `/=]", section + " "), f"{command} {option}"


@pytest.mark.parametrize(
    "variable",
    sorted({option.env for option in SETTINGS if option.env} | set(SECRET_VARIABLES)),
)
def test_every_environment_variable_is_documented(variable: str) -> None:
    assert f"`{variable}`" in CONFIGURATION_PAGE


@pytest.mark.parametrize("key", sorted({option.key for option in SETTINGS} | TENANT_KEYS))
def test_every_settings_key_is_documented(key: str) -> None:
    assert f"`{key}`" in CONFIGURATION_PAGE


def test_the_example_settings_file_has_every_key() -> None:
    example = (ROOT / "config.example.toml").read_text()
    for option in SETTINGS:
        assert re.search(rf"^#? ?{option.key} =", example, re.M), option.key


def test_the_readme_names_the_test_and_demo_commands() -> None:
    assert "make check" in README and "make demo" in README and ".ci/run" in README
    assert "make check" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) < README_MAX_LINES


@pytest.mark.parametrize("page", sorted(page.name for page in DOCS.glob("*.md")))
def test_the_readme_links_every_page(page: str) -> None:
    assert f"](docs/{page})" in README or f"](docs/{page}#" in README


# Links and command lines: README.md and every page of docs/.


def fenced_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """Each fenced code block: the line number of its first line, its info string, its lines."""
    blocks: list[tuple[int, str, list[str]]] = []
    info: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            if info is None:
                info, start, lines = line.lstrip()[3:].strip(), number + 1, []
            else:
                blocks.append((start, info, lines))
                info = None
        elif info is not None:
            lines.append(line)
    assert info is None, "a fenced code block is never closed"
    return blocks


def prose(text: str, *, spans: bool = False) -> str:
    """The text outside fenced code blocks (where headings are), and outside inline code spans
    too unless `spans` (where links are), line for line."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            kept.append("")
        else:
            kept.append("" if fenced else line if spans else re.sub(r"`[^`\n]*`", "``", line))
    return "\n".join(kept)


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower case, spaces to `-`, punctuation other
    than `-` and `_` dropped (a link in it counts by its text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(page.read_text(), spans=True).splitlines():
        heading = re.match(r" {0,3}#{1,6} +(.*?)(?: +#+)? *$", line)
        if heading:
            # GitHub numbers repeated anchors: the second `x` is `x-1`.
            slug = anchor(heading.group(1))
            unique, repeat = slug, 0
            while unique in found:
                repeat += 1
                unique = f"{slug}-{repeat}"
            found.add(unique)
    return found


def test_anchors_follow_githubs_rules() -> None:
    assert {"commands", "auth0-backfill-run", "auth0-backfill-sandbox"} <= anchors(
        DOCS / "commands.md"
    )
    assert anchor("`auth0-backfill run`") == "auth0-backfill-run"
    assert anchor("Rows like the stream's") == "rows-like-the-streams"
    assert anchor("Three situations, three commands") == "three-situations-three-commands"
    assert anchor("Per plan (`max_rows`, 10_000)") == "per-plan-max_rows-10_000"


def relative_links(page: Path) -> list[tuple[int, str]]:
    text = prose(page.read_text())
    links = []
    for number, line in enumerate(text.splitlines(), 1):
        targets = re.findall(r"\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)", line)
        targets += re.findall(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", line)
        links += [
            (number, target)
            for target in targets
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I)  # https:, mailto: ...
        ]
    return links


LINKS = [(page, number, target) for page in PAGES for number, target in relative_links(page)]


def test_the_pages_have_relative_links() -> None:
    assert len(LINKS) > 20


@pytest.mark.parametrize(
    ("page", "number", "target"),
    LINKS,
    ids=[f"{page.relative_to(ROOT)}:{number}:{target}" for page, number, target in LINKS],
)
def test_every_relative_link_resolves(page: Path, number: int, target: str) -> None:
    assert target, f"{page.name}:{number}: an empty link"
    path, _, fragment = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.is_relative_to(ROOT), f"{page.name}:{number}: {target} leaves the repository"
    assert file.exists(), f"{page.name}:{number}: {target}: no such file"
    if fragment:
        assert file.suffix == ".md", f"{page.name}:{number}: {target}: an anchor into a non-page"
        assert fragment in anchors(file), f"{page.name}:{number}: {target}: no such heading"


def command_lines(page: Path) -> list[tuple[int, list[str]]]:
    """Every `auth0-backfill ...` the page shows in a shell block (also as a `docker run`
    image's command, in a crontab or a systemd unit), as the words the CLI would be given."""
    found = []
    for start, info, lines in fenced_blocks(page.read_text()):
        if info not in {"sh", "bash", "shell", "cron", "ini"}:
            continue
        logical: list[tuple[int, str]] = []
        for number, line in enumerate(lines, start):
            if logical and logical[-1][1].endswith("\\"):
                logical[-1] = (logical[-1][0], logical[-1][1][:-1] + " " + line)
            else:
                logical.append((number, line))
        for number, line in logical:
            if info == "cron":
                line = " ".join(line.split()[5:]) if not line.startswith("#") else ""
            elif info == "ini":
                line = line.removeprefix("ExecStart=") if line.startswith("ExecStart=") else ""
            found += [(number, words) for words in _invocations(line)]
    return found


def _invocations(line: str) -> list[list[str]]:
    # Placeholders (`...`, `$VAR`, `$(VAR)`) become a harmless value; `2>&1` becomes `>&1`.
    line = re.sub(r"\.\.\.|\$\(\w+\)|\$\{\w+\}|\$\w+", "0", line)
    line = re.sub(r"(^|\s)\d+(?=[<>])", r"\1", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = iter(lexer)
    for token in tokens:
        if token in {"&&", "||", ";", "|", "&", "(", ")"}:
            commands.append([])
        elif token in {">", ">>", "<", ">&", "<&", "&>", ">|"}:
            next(tokens, None)  # the redirection's target
        else:
            commands[-1].append(token)
    invocations = []
    for words in commands:
        while words and re.match(r"\w+=", words[0]):  # NAME=value before a command
            words = words[1:]
        if words and (words[0] == "auth0-backfill" or words[0].endswith("/auth0-backfill")):
            invocations.append(words[1:])
        elif words[:2] == ["docker", "run"] and "auth0-backfill" in words:
            invocations.append(words[words.index("auth0-backfill") + 1 :])
    return invocations


COMMAND_LINES = [(page, number, words) for page in PAGES for number, words in command_lines(page)]


def test_the_pages_show_every_command() -> None:
    shown = {words[0] for _, _, words in COMMAND_LINES if words}
    assert shown == set(COMMANDS), sorted(shown)


def test_the_command_lines_are_read_as_the_shell_reads_them() -> None:
    assert _invocations("sleep 2 && . ./env && auth0-backfill run --quiet > out.log 2>&1") == [
        ["run", "--quiet"]
    ]
    assert _invocations("docker run --rm -v a:/b auth0-backfill status  # where it stands") == [
        ["status"]
    ]
    assert _invocations("docker build -t auth0-backfill .") == []
    assert _invocations("auth0-backfill run --tenant ... --shard $(K)/4") == [
        ["run", "--tenant", "0", "--shard", "0/4"]
    ]


def parse(words: list[str]) -> None:
    """Parse the words as the CLI would, without running anything."""
    parent = click.Context(main, info_name="auth0-backfill", resilient_parsing=False)
    name, command, rest = main.resolve_command(parent, words)
    assert name is not None and command is not None
    # The stand-in for a command whose extra is missing takes any arguments: it proves nothing.
    assert not command.context_settings.get("ignore_unknown_options"), f"{name}: install extras"
    try:
        command.make_context(name, rest, parent=parent, resilient_parsing=False)
    except click.exceptions.Exit as leaving:  # --help, --version
        assert leaving.exit_code == 0


def test_parsing_fails_on_what_the_cli_does_not_take() -> None:
    parse(["run", "--from-date", "2026-10-01", "--pii", "drop", "-q"])
    for words in (
        ["run", "--from-day", "2026-10-01"],
        ["run", "--pii", "hide"],
        ["run", "--concurrency", "0"],
        ["run", "extra"],
        ["fetch"],
        ["sandbox", "--logs", "many"],
    ):
        with pytest.raises(click.UsageError):
            parse(words)


@pytest.mark.parametrize(
    ("page", "number", "words"),
    COMMAND_LINES,
    ids=[f"{page.relative_to(ROOT)}:{number}" for page, number, _ in COMMAND_LINES],
)
def test_every_command_line_parses(page: Path, number: int, words: list[str]) -> None:
    try:
        parse(words)
    except click.UsageError as error:
        pytest.fail(f"{page.name}:{number}: auth0-backfill {shlex.join(words)}: {error}")


def test_the_region_hosts_a_404_points_to_are_listed() -> None:
    from backfill.tinybird.region import REGION_HOSTS

    page = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    for host in REGION_HOSTS:
        assert f"`{host}`" in page
