"""Fixtures of the real-clients suite: the tool double (tool_double.py), started first; one
real `keygate serve` for the whole session whose settings route `double-tools` to it
(clients_harness.write_clients_config), logged into as the account; the clients run.sh
installed; and a fresh API key per test, made through keygate's API.

Every test records which paths keygate answered while its client ran; the session ends with
that table (the terminal summary), the data the work on the routes real clients call needs
(docs/CONTRACT.md, "Data plane").
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from clients_harness import (
    UPSTREAM_CREDENTIAL_VARIABLE,
    ClientRun,
    ClientsKeygate,
    InstalledClient,
    claude_code_command,
    codex_command,
    node_modules_directory,
    package_version,
    qwen_code_command,
    write_clients_config,
)
from tool_double import ToolDouble

pytest_plugins = ["keygate_pytest"]

# (test id, client run) of every run, for the summary at the end.
_runs_seen: list[tuple[str, ClientRun]] = []


@pytest.fixture(scope="session")
def upstream_secret() -> str:
    return "upstream-secret-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def tool_double(upstream_secret) -> ToolDouble:
    double = ToolDouble(expected_credential=upstream_secret)
    double.start()
    yield double
    double.stop()


@pytest.fixture(scope="session")
def keygate(keygate_binary, tmp_path_factory, tool_double, upstream_secret) -> ClientsKeygate:
    config_path = write_clients_config(tmp_path_factory.mktemp("keygate-config") / "keygate.toml", tool_double.base_url)
    server = ClientsKeygate(keygate_binary, tmp_path_factory.mktemp("keygate-data"), config_path,
                            {UPSTREAM_CREDENTIAL_VARIABLE: upstream_secret})
    server.remember_secret(upstream_secret)
    server.start()
    server.log_in_as_root()
    yield server
    server.stop()


@pytest.fixture
def api_key(keygate, request) -> tuple[int, str]:
    """(apiKeyId, plaintext) of a new key, permission All, made through keygate's API."""
    return keygate.create_api_key("clients suite: " + request.node.name[:60])


@pytest.fixture
def project(tmp_path) -> Path:
    """The directory a client runs in (its workspace), empty but for what the test writes."""
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture(scope="session")
def node_modules():
    directory = node_modules_directory()
    if not directory.is_dir():
        pytest.fail(f"the clients are not installed at {directory}: run tests/clients/run.sh "
                    "(it installs tests/clients/package-lock.json with npm)")
    return directory


def _installed(name: str, command: tuple[str, ...], node_modules, package: str) -> InstalledClient:
    program = command[-1]
    if not Path(program).is_file():
        pytest.fail(f"{name} is not installed at {program}: run tests/clients/run.sh")
    return InstalledClient(name, command, package_version(node_modules, package))


@pytest.fixture(scope="session")
def claude_code(node_modules) -> InstalledClient:
    return _installed("Claude Code", claude_code_command(node_modules), node_modules, "@anthropic-ai/claude-code")


@pytest.fixture(scope="session")
def qwen_code(node_modules) -> InstalledClient:
    return _installed("Qwen Code", qwen_code_command(node_modules), node_modules, "@qwen-code/qwen-code")


@pytest.fixture(scope="session")
def codex(node_modules) -> InstalledClient:
    return _installed("Codex CLI", codex_command(node_modules), node_modules, "@openai/codex")


@pytest.fixture
def record_run(request):
    """Tests pass each ClientRun here, for the summary of paths at the end of the session."""
    def record(run: ClientRun) -> ClientRun:
        _runs_seen.append((request.node.name, run))
        return run
    return record


def pytest_terminal_summary(terminalreporter):
    if not _runs_seen:
        return
    terminalreporter.section("paths keygate answered per client run")
    for test_name, run in _runs_seen:
        first_answer = ("" if run.first_answer_seconds is None
                        else f" (keygate's first answer at {run.first_answer_seconds:.1f}s)")
        terminalreporter.write_line(f"{test_name}: exit {run.returncode}, {run.seconds:.1f}s{first_answer}")
        counts: dict[tuple[str, str, int], int] = {}
        for line in run.access_lines:
            counts[(line.method, line.path, line.status)] = counts.get((line.method, line.path, line.status), 0) + 1
        for (method, path, status), count in sorted(counts.items()):
            terminalreporter.write_line(f"    {count:3d} x {method} {path} -> {status}")
