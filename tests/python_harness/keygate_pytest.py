"""The pytest side of the shared Python harness, loaded by each suite's conftest.py with
`pytest_plugins = ["keygate_pytest"]`:

- the suite's canary test file (named by `canary_test_file` in its pytest.ini) runs after
  every other test, so that its scan for plaintext secrets covers every secret the session
  produced; the order is otherwise unchanged;
- every failing test's report carries the tail of the running keygate's serve log;
- the fixture `keygate_binary`: the binary to test, or the session stops at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keygate_process import REPOSITORY_ROOT, keygate_binary_path, running_servers

CANARY_TEST_FILE_OPTION = "canary_test_file"


def pytest_addoption(parser):
    parser.addini(
        CANARY_TEST_FILE_OPTION,
        "file name of the suite's canary test (it looks for every plaintext secret the suite "
        "saw in what keygate wrote), which runs after every other test",
    )


def pytest_collection_modifyitems(session, config, items):
    """Runs the canary test file after every other test (stable order otherwise)."""
    canary_test_file_name = config.getini(CANARY_TEST_FILE_OPTION)
    if not canary_test_file_name:
        raise pytest.UsageError(f"pytest.ini must name the suite's canary test file ({CANARY_TEST_FILE_OPTION} = ...)")
    items.sort(key=lambda item: item.path.name == canary_test_file_name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of the server log to every failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and running_servers:
        report.sections.append(("keygate serve log (tail)", running_servers[-1].serve_log_tail(3000)))


@pytest.fixture(scope="session")
def keygate_binary(pytestconfig) -> Path:
    """The binary to test (keygate_process.keygate_binary_path); fails the session at once
    when it is missing."""
    binary_path = keygate_binary_path()
    if not binary_path.is_file():
        run_script = pytestconfig.rootpath.relative_to(REPOSITORY_ROOT) / "run.sh"
        pytest.fail(f"keygate binary not found at {binary_path}: run {run_script} or set KEYGATE_BIN")
    return binary_path
