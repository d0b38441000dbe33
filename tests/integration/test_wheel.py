"""Wampgate installed as a user installs it: the wheel `pip wheel` builds, in a fresh virtualenv with its dependencies,
run by `twistd wampgate` from a project directory that has its own `router/` and `plugins/` packages (which must
never be imported: the import package is `wampgate`). The router starts, serves a WebSocket and a RawSocket client,
and stops on SIGTERM.

Slow (a build and an install with every dependency, from pip's cache or the registry), and bounded: every step has
its own timeout and the whole test at most TEST_TIMEOUT.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.integration.test_twistd import Output, run_client, wait_for_lines
from tests.support.router import REALM1_ANONYMOUS_ALL
from tests.support.wait import free_port

REPO = Path(__file__).resolve().parents[2]
TEST_TIMEOUT = 300
BUILD_TIMEOUT = 120.0
INSTALL_TIMEOUT = 200.0
START_TIMEOUT = STOP_TIMEOUT = 20.0
# What the build reads: the metadata, the two package folders and the twistd dropin.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "router", "plugins", "twisted")
# Packages of the user's own project, named like Wampgate's folders; importing either is the bug this test guards.
SHADOW = 'raise ImportError("the project\'s own {name}/ package was imported: Wampgate must import only wampgate")\n'


def run(command: list, timeout: float, **options) -> subprocess.CompletedProcess:
    """Run a step, failing the test with its output when it exits non-zero."""
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout, **options)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n" + (
        done.stdout + done.stderr)[-4000:]
    return done


def build_wheel(tmp_path: Path) -> Path:
    """`pip wheel --no-deps` from a copy of the sources (the build writes build/ and *.egg-info into its tree)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--quiet", "-w", dist,
         source], BUILD_TIMEOUT)
    (wheel,) = dist.glob("wampgate-*.whl")
    return wheel


def assert_wheel_contents(wheel: Path) -> None:
    """The dropin ships in Twisted's plugin folder without an __init__.py of twisted's own (which would shadow
    Twisted's packages); the code ships as wampgate and wampgate.plugins, never as router or plugins; the licence
    ships too."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "twisted/plugins/wampgate_dropin.py" in names
    assert "twisted/__init__.py" not in names and "twisted/plugins/__init__.py" not in names
    assert [name for name in names if name.startswith("twisted/")] == ["twisted/plugins/wampgate_dropin.py"]
    for module in ("wampgate/__init__.py", "wampgate/cli.py", "wampgate/tx/tap.py", "wampgate/core/__init__.py",
                   "wampgate/plugins/__init__.py", "wampgate/plugins/authn/ticket.py"):
        assert module in names, module
    top_level = {name.split("/")[0] for name in names}
    assert not top_level & {"router", "plugins"}, top_level
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)


def fresh_virtualenv(tmp_path: Path, wheel: Path) -> Path:
    """A new virtualenv with the wheel and its dependencies (pip's cache or the registry); its bin directory."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], INSTALL_TIMEOUT)
    bin_dir = venv / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
        INSTALL_TIMEOUT)
    return bin_dir


def project_directory(tmp_path: Path, port: int) -> Path:
    """A user's project: its own router/ and plugins/ packages (importing them raises), and the router's config."""
    project = tmp_path / "project"
    for name in ("router", "plugins"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(SHADOW.format(name=name))
    (project / "router.toml").write_text(textwrap.dedent(f"""
        [[listeners]]
        name = "universal"
        endpoint = "tcp:{port}:interface=127.0.0.1"
        transports = ["websocket", "rawsocket"]

        [listeners.auth.anonymous]
        role = "anonymous"
        """) + REALM1_ANONYMOUS_ALL)
    return project


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT)
def test_wheel_installs_and_serves_under_twistd_beside_a_projects_own_router_package(tmp_path):
    """The built wheel holds the twistd dropin (and no twisted/__init__.py); installed with its dependencies into a
    fresh virtualenv, `wampgate --version` and `twistd wampgate --version` name its version, and `twistd -n
    wampgate`, started in a directory whose router/ and plugins/ raise when imported, logs 'ready', serves
    WebSocket and RawSocket clients (Autobahn from the test environment) and stops on SIGTERM without a traceback."""
    wheel = build_wheel(tmp_path)
    assert_wheel_contents(wheel)
    version = wheel.name.split("-")[1]
    bin_dir = fresh_virtualenv(tmp_path, wheel)
    port = free_port()
    project = project_directory(tmp_path, port)

    assert run([bin_dir / "wampgate", "--version"], 30, cwd=project).stdout == f"wampgate {version}\n"
    assert run([bin_dir / "twistd", "wampgate", "--version"], 30, cwd=project).stdout.startswith(
        f"wampgate {version} (Twisted ")

    process = subprocess.Popen([str(bin_dir / "twistd"), "-n", "--pidfile=", "wampgate", "--config", "router.toml"],
                               cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = Output(process.stdout), Output(process.stderr)
    try:
        wait_for_lines(process, stdout, "ready: SIGHUP reloads", 1, START_TIMEOUT)
        for url in (f"ws://127.0.0.1:{port}/ws", f"rs://127.0.0.1:{port}"):
            client = run_client(url)
            answers = [line for line in client.stdout.splitlines() if line.startswith("OK ")]
            assert answers == ['OK [1, "two"] {"three": 3} anonymous'], (url, client.stdout, client.stderr)
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=STOP_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    stdout.join()
    stderr.join()
    output = stdout.text() + stderr.text()
    assert status in (0, -signal.SIGTERM), output
    assert "Server Shut Down." in stdout.text()
    assert "Traceback" not in output and "package was imported" not in output
    located = run([bin_dir / "python", "-c", "import wampgate, twisted.plugins.wampgate_dropin as d; "
                   "print(wampgate.__file__); print(d.__file__)"], 30, cwd=project).stdout.splitlines()
    assert len(located) == 2 and all(path.startswith(str(bin_dir.parent)) for path in located), located
    # The trap is live: from this directory, `import router` reaches the project's package.
    shadowed = subprocess.run([str(bin_dir / "python"), "-c", "import router"], cwd=project, capture_output=True,
                              text=True, timeout=30)
    assert shadowed.returncode == 1 and "the project's own router/ package was imported" in shadowed.stderr
