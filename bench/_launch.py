"""Run one command and report its exact resource use; started by bench/run.py as a small process.

Why a separate launcher: on Linux a child's ``ru_maxrss`` starts from its parent's peak RSS when it
is forked (exec keeps the high-water mark of the image it replaces), so a job forked straight from
the benchmark (the sandbox and chdb loaded) could never report less than that. Forked
from this launcher (stdlib only, started with -I -S), the job inherits only a few MB, and
``os.wait4`` on it gives its own peak RSS and CPU time (and those of any child it waited for).

Usage: python -I -S _launch.py RESULT.json -- COMMAND [ARG ...]
The command inherits stdin, stdout, stderr, the environment and the working directory; the
launcher exits with the command's exit code after writing RESULT.json.
"""

import json
import os
import sys
import time


def _high_water_kib() -> int | None:
    """This launcher's own peak RSS (VmHWM): what the job inherits at spawn, at most."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        sys.stderr.write("usage: _launch.py RESULT.json -- COMMAND [ARG ...]\n")
        return 2
    result_path, command = argv[1], argv[3:]
    inherited = _high_water_kib()
    started = time.monotonic()
    pid = os.posix_spawnp(command[0], command, dict(os.environ))
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - started
    exit_code = os.waitstatus_to_exitcode(status)
    result = {
        "exit_code": exit_code,
        "wall_seconds": wall,
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "launcher_hwm_kib": inherited,
    }
    with open(result_path, "w", encoding="utf-8") as stream:
        json.dump(result, stream)
    return exit_code if exit_code >= 0 else 128 - exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
