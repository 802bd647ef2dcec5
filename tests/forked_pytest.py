"""Run `pytest ARGS` in a fresh process that starts with the heavy imports already done.

paymon's own tests run the suite the way users do, a hundred times and more (every one-fault
world, both alerting generations). A fresh interpreter spends about a second of CPU importing
pytest, sentry-sdk, uvicorn, httpx and the sandbox before the run begins. Here a multiprocessing
fork server imports those once (`PRELOAD`), and each run is a process forked from it that calls
`pytest.main(ARGS)` with its own working directory, environment and output file: the same run,
without repeating the imports. Modules pytest rewrites (the checks, conftest.py, fixtures/) are
not preloaded, so their assertions are rewritten exactly as in `python -m pytest`.

`PAYMON_SELFTEST_FORK=0` runs `python -m pytest` in a subprocess instead.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PRELOAD = [
    "pytest", "_pytest.config", "_pytest.junitxml", "xdist.plugin", "allure_pytest.plugin", "sentry_sdk",
    "slack_sdk", "httpx", "uvicorn", "starlette.applications", "pydantic", "yaml", "filelock", "jsonschema",
    "paymon.sandbox.server", "paymon.sandbox.world", "paymon.sandbox.faults", "paymon.config.spec",
    "paymon.config.target", "paymon.findings.snapshot", "paymon.findings.production", "paymon.delivery.endtoend",
    "paymon.delivery.drill", "paymon.delivery.cleanup", "paymon.probes.latency", "paymon.reporting.verdict",
    "paymon.reporting.measurements", "paymon.clients.slack", "paymon.clients.pagerduty",
    "paymon.clients.run_cache",
]
_context = None


def _fork_context():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(args: list[str], cwd: str, env: dict[str, str], output: str) -> None:
    """In the forked process: become `python -m pytest ARGS` started in `cwd` with `env`."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.path.insert(0, cwd)  # what `python -m` puts first
    sys.argv = [sys.executable, "-m", "pytest", *args]
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    import pytest

    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`python -m pytest ARGS` (stdout and stderr together in `.stdout`), forked from the preloaded server."""
    if os.environ.get("PAYMON_SELFTEST_FORK", "1") == "0":
        proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout + proc.stderr, "")
    with tempfile.NamedTemporaryFile("r", suffix=".out", encoding="utf-8", errors="replace") as output:
        process = _fork_context().Process(target=_child, args=(list(args), str(cwd), dict(env), output.name))
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["pytest", *args], timeout, output.read())
        return subprocess.CompletedProcess(["pytest", *args], process.exitcode, output.read(), "")
