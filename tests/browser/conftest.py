"""Fixtures of the console browser suite: one `keygate serve` for the session with RAM
users made by `keygate admin create-user` before it starts (alice: key-manager, bob:
member, carol: key-manager who owns the quota test in us-east-1), and a fresh headless
Chromium for each test.

The binary is `$KEYGATE_BIN`, else `<target dir>/debug/keygate` (tests/browser/run.sh
builds it). Screenshots go to docs/screenshots/ (`$KEYGATE_SCREENSHOT_DIR` overrides).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from console_harness import CHROMEDRIVER_PATH, CHROMIUM_PATH, Console, KeygateServer, grant_clipboard, new_browser

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
_servers: list[KeygateServer] = []


def keygate_binary_path() -> Path:
    from_environment = os.environ.get("KEYGATE_BIN")
    if from_environment:
        return Path(from_environment).resolve()
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPOSITORY_ROOT / "target"))
    return (target_dir / "debug" / "keygate").resolve()


SECRETS_TEST_FILE_NAME = "test_console_secrets.py"


def pytest_collection_modifyitems(session, config, items):
    """The check that no secret was written anywhere runs after every other test."""
    items.sort(key=lambda item: item.path.name == SECRETS_TEST_FILE_NAME)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of the server log to every failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _servers:
        report.sections.append(("keygate serve log (tail)", _servers[-1].log_tail(3000)))


@pytest.fixture(scope="session")
def keygate_server(tmp_path_factory) -> KeygateServer:
    binary_path = keygate_binary_path()
    if not binary_path.is_file():
        pytest.fail(f"keygate binary not found at {binary_path}: run tests/browser/run.sh or set KEYGATE_BIN")
    for needed in (CHROMIUM_PATH, CHROMEDRIVER_PATH):
        if not Path(needed).is_file():
            pytest.fail(f"{needed} is missing: apt-get install -y chromium chromium-driver")
    server = KeygateServer(binary_path, tmp_path_factory.mktemp("keygate-data"))
    server.create_user("alice", "key-manager")
    server.create_user("bob", "member")
    server.create_user("carol", "key-manager")
    server.start()
    _servers.append(server)
    yield server
    server.stop()
    _servers.remove(server)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    directory = Path(os.environ.get("KEYGATE_SCREENSHOT_DIR", REPOSITORY_ROOT / "docs" / "screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def download_dir(tmp_path) -> Path:
    directory = tmp_path / "downloads"
    directory.mkdir()
    return directory


@pytest.fixture
def console(keygate_server, download_dir):
    driver = new_browser(download_dir)
    grant_clipboard(driver, keygate_server.base_url())
    try:
        yield Console(driver, keygate_server)
    finally:
        driver.quit()
        shutil.rmtree(driver.keygate_user_data_dir, ignore_errors=True)
