"""paymon's pytest plugin comes in through a pytest11 entry point, so its options take a path in
either form (`--sandbox-world PATH`, `--sandbox-world=PATH`) from any directory, with `pytest`,
`python -m pytest` and under xdist; it stays out of other projects' runs (issue 14 item 1).

Each run is the cron check against a world whose reconciliation monitor expects 03:00: it fails
with exactly that, which shows the world given was the world used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from paymon.sandbox.faults import apply_fault
from paymon.sandbox.world import golden_world
from tests import forked_pytest

REPO = Path(__file__).resolve().parent.parent
CRON_FAILURE = "schedule expected 0 2 * * *, actual 0 3 * * *"
USAGE_ERROR = 4


@pytest.fixture
def world(tmp_path) -> Path:
    """A one-fault world in a file outside the checkout (the case pytest once took for a test path)."""
    import json

    path = tmp_path / "world" / "w.json"
    path.parent.mkdir()
    path.write_text(json.dumps(apply_fault(golden_world("workflow"), "cron-wrong-hour")))
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("SENTRY_", "PAYMON_", "PYTEST_")) and k != "PYTHONDONTWRITEBYTECODE"}


def _outputs(tmp_path: Path) -> list[str]:
    # Never the checkout's reports/: pytest.ini's addopts name them, later options win.
    return ["-p", "no:cacheprovider", f"--junitxml={tmp_path / 'junit.xml'}",
            f"--alluredir={tmp_path / 'allure-results'}"]


def _cases(tmp_path: Path) -> dict[str, str]:
    """test name -> failure message ('' when it passed), from the run's JUnit file."""
    cases = {}
    for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        cases[case.get("name").rsplit("@", 1)[0]] = "" if problem is None else problem.get("message") or "failed"
    return cases


def _assert_the_world_was_used(proc, tmp_path: Path) -> None:
    assert proc.returncode == 1, f"exit {proc.returncode} (4 is pytest's usage error):\n{proc.stdout[-3000:]}"
    cases = _cases(tmp_path)
    assert CRON_FAILURE in cases.pop("test_reconciliation_monitor"), proc.stdout[-3000:]
    assert not [name for name, failure in cases.items() if failure], proc.stdout[-3000:]
    # The checkout's pytest.ini applied (testpaths, addopts), wherever pytest was started.
    assert f"rootdir: {REPO}" in proc.stdout and "configfile: pytest.ini" in proc.stdout, proc.stdout[:1000]


def test_the_plugin_is_registered_through_a_pytest11_entry_point():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert declared == {"fixtures.plugin": "fixtures.plugin"}
    installed = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    # Named after its module, so the root conftest naming the module too registers it once.
    assert installed.get("fixtures.plugin") == "fixtures.plugin", "reinstall: pip install -e ."


def test_the_entry_point_and_the_root_conftest_register_it_once(pytestconfig):
    # This very run loads both (the entry point, then conftest.py's pytest_plugins).
    manager = pytestconfig.pluginmanager
    registered = [plugin for plugin in manager.get_plugins() if getattr(plugin, "__name__", "") == "fixtures.plugin"]
    assert len(registered) == 1 and manager.get_name(registered[0]) == "fixtures.plugin"
    assert [name for name, _ in manager.list_name_plugin() if name.endswith("fixtures.redaction")] == [
        "fixtures.redaction"]


@pytest.mark.parametrize("form", ["space", "equals"])
def test_a_path_option_outside_the_checkout_works_in_either_form(form, world, tmp_path):
    option = ["--sandbox-world", str(world)] if form == "space" else [f"--sandbox-world={world}"]
    # No test path: pytest.ini's testpaths and addopts must still apply (pytest found its root
    # directory from the option's value before it knew the option: pytest#8846).
    proc = forked_pytest.run([*option, "-k", "reconciliation_monitor or reconciliation_last_run",
                              *_outputs(tmp_path)], cwd=REPO, env=_env(), timeout=120)
    _assert_the_world_was_used(proc, tmp_path)
    assert set(_cases(tmp_path)) <= {"test_reconciliation_monitor", "test_reconciliation_last_run"}


@pytest.mark.parametrize("how", ["pytest", "python -m pytest", "python -m pytest -n 2"])
def test_from_another_directory(how, world, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = [str(REPO / "checks" / "test_cron.py"), "--sandbox-world", str(world), *_outputs(tmp_path)]
    if how == "pytest":  # the console script: no working directory on sys.path
        proc = subprocess.run([str(Path(sys.executable).parent / "pytest"), *args], cwd=elsewhere, env=_env(),
                              capture_output=True, text=True, timeout=120)
        proc = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout + proc.stderr)
    else:
        proc = forked_pytest.run([*args, *how.split()[3:]], cwd=elsewhere, env=_env(), timeout=120)
    _assert_the_world_was_used(proc, tmp_path)


def test_without_entry_points_the_root_conftest_registers_the_plugin(world, tmp_path):
    env = {**_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = forked_pytest.run(["-p", "xdist.plugin", "-p", "allure_pytest.plugin", "checks/test_cron.py",
                              f"--sandbox-world={world}", *_outputs(tmp_path)], cwd=REPO, env=env, timeout=120)
    _assert_the_world_was_used(proc, tmp_path)


def test_another_projects_run_is_left_alone(tmp_path):
    project = tmp_path / "other"
    project.mkdir()
    (project / "test_other.py").write_text("def test_other(pytestconfig):\n    assert pytestconfig.rootpath\n")
    proc = forked_pytest.run(["-p", "no:cacheprovider", "-q"], cwd=project, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert "paymon" not in proc.stdout
    # No reports/ (paymon's outputs), no monitoring.yaml looked for: nothing of paymon's happened.
    assert sorted(p.name for p in project.iterdir() if p.name != "__pycache__") == ["test_other.py"]


def _is_plugin_module(path: Path) -> bool:
    """Defines a pytest hook or fixture (fixtures/outcome.py, say, only holds helpers)."""
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and (node.name.startswith("pytest_") or any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list)):
            return True
    return False


def test_every_fixtures_module_with_hooks_or_fixtures_is_registered():
    from fixtures import plugin

    modules = {f"fixtures.{path.stem}" for path in (REPO / "fixtures").glob("*.py")
               if path.stem not in ("__init__", "plugin") and _is_plugin_module(path)}
    missing = sorted(modules - set(plugin.pytest_plugins))
    assert not missing, f"append to fixtures/plugin.py's pytest_plugins: {missing}"
