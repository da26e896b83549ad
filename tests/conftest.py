"""For the whole suite: the order the tests are handed out in, and a guard on the state a test
could leave behind in the process that runs the next one.

`make test` runs the suite on several pytest-xdist workers: each a process that runs its tests
one after another. A test that changes the process (a signal handler, the umask, the working
directory, the environment) changes it for the next test of that worker too, in an order that
differs from run to run; the guard puts each of them back after every test."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest

# Handlers installed by code the tests call in-process: click's CliRunner runs `main`, which
# installs the job's SIGTERM handler, and `sandbox`, which installs its SIGINT and SIGTERM ones.
GUARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture(autouse=True)
def _process_state_restored() -> Iterator[None]:
    handlers = {which: signal.getsignal(which) for which in GUARDED_SIGNALS}
    umask = os.umask(0o022)
    os.umask(umask)
    cwd = os.getcwd()
    environ = _environment()
    yield
    for which, handler in handlers.items():
        if signal.getsignal(which) is not handler:
            signal.signal(which, handler)
    os.umask(umask)
    if os.getcwd() != cwd:
        os.chdir(cwd)
    for name in _environment().keys() - environ.keys():
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _environment() -> dict[str, str]:
    """The environment, less the variable pytest itself sets to the phase of each test."""
    return {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}


def pytest_configure(config: pytest.Config) -> None:
    """The tests start the CLI hundreds of times: with PYTHONDONTWRITEBYTECODE set (as on some
    machines) each start compiled every module of the package again, a quarter of its CPU. The
    children write their bytecode to a directory of this run instead (never into the tree). Set
    here, before pytest-xdist starts its workers, which inherit it."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    prefix = tempfile.mkdtemp(prefix="auth0-backfill-tests-pycache-")
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    config.add_cleanup(lambda: shutil.rmtree(prefix, ignore_errors=True))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` tests first, each followed by a quick one: a worker takes its first two tests at
    once, so each of the first workers starts on a different slow test, and the run does not end
    on one of them started last. The rest keep the order they were collected in."""
    slow = [item for item in items if item.get_closest_marker("slow")]
    if not slow:
        return
    rest = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    for index, item in enumerate(slow):
        ordered.append(item)
        if index < len(rest):
            ordered.append(rest[index])
    ordered.extend(rest[len(slow) :])
    items[:] = ordered
