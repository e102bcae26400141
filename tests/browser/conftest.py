"""Fixtures of the console browser suite: one `keygate serve` for the session with RAM
users made by `keygate admin create-user` before it starts (alice: key-manager, bob:
member, carol: key-manager who owns the quota test in us-east-1, erin: member whose password
the password test changes), and a fresh headless
Chromium for each test.

The binary is `$KEYGATE_BIN`, else `<target dir>/debug/keygate` (tests/browser/run.sh
builds it). Screenshots are written only with `KEYGATE_UPDATE_SCREENSHOTS=1`, so that an
ordinary run (CI) leaves the committed images alone; they go to docs/screenshots/
(`$KEYGATE_SCREENSHOT_DIR` overrides).
The shared harness's pytest plugin (tests/python_harness/keygate_pytest.py) runs the check
that no secret was written anywhere (pytest.ini: canary_test_file) after every other test,
and attaches the server log to failing tests' reports.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from console_harness import CHROMEDRIVER_PATH, CHROMIUM_PATH, Console, console_test_server, grant_clipboard, new_browser, save_whole_page
from keygate_process import REPOSITORY_ROOT, KeygateProcess

pytest_plugins = ["keygate_pytest"]


@pytest.fixture(scope="session")
def keygate_server(keygate_binary, tmp_path_factory) -> KeygateProcess:
    for needed in (CHROMIUM_PATH, CHROMEDRIVER_PATH):
        if not Path(needed).is_file():
            pytest.fail(f"{needed} is missing: apt-get install -y chromium chromium-driver")
    server = console_test_server(keygate_binary, tmp_path_factory.mktemp("keygate-data"))
    server.create_user("alice", "key-manager")
    server.create_user("bob", "member")
    server.create_user("carol", "key-manager")
    server.create_user("erin", "member")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def save_screenshot():
    """`save_screenshot(driver, name, whole_page=False)`: the viewport (or the whole page)
    as docs/screenshots/<name>, when KEYGATE_UPDATE_SCREENSHOTS=1; else nothing."""
    if os.environ.get("KEYGATE_UPDATE_SCREENSHOTS") != "1":
        return lambda driver, name, whole_page=False: None
    directory = Path(os.environ.get("KEYGATE_SCREENSHOT_DIR", REPOSITORY_ROOT / "docs" / "screenshots"))
    directory.mkdir(parents=True, exist_ok=True)

    def save(driver, name: str, whole_page: bool = False) -> None:
        if whole_page:
            save_whole_page(driver, directory / name)
        else:
            driver.save_screenshot(str(directory / name))

    return save


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
