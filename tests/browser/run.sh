#!/usr/bin/env bash
# Runs the console browser suite (tests/browser) in headless Chromium against a freshly
# built keygate. Needs Debian's chromium and chromium-driver (apt-get install -y chromium
# chromium-driver); Selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium and
# runs offline, so nothing else is downloaded.
#
#   bash tests/browser/run.sh [extra pytest arguments]
#
# KEYGATE_BROWSER_VENV  where the virtualenv lives (default: <repo>/target/browser-venv)
# KEYGATE_BIN           a keygate binary to test; when unset, `cargo build --bin keygate`
#                       (debug) builds one and it is used.
# KEYGATE_UPDATE_SCREENSHOTS=1  write the screenshots (the committed images in docs/screenshots
#                       are left alone otherwise)
# KEYGATE_SCREENSHOT_DIR where the screenshots go (default: <repo>/docs/screenshots)
# Exits with pytest's status: non-zero when a test fails.
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repository_root"
source tests/python_harness/python_env.sh

for needed in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "$needed" ]; then
        echo "browser tests: $needed is missing (on Debian: apt-get install -y chromium chromium-driver)" >&2
        exit 1
    fi
done

prepare_python_suite "browser tests" "${KEYGATE_BROWSER_VENV:-$repository_root/target/browser-venv}" tests/browser/requirements.txt
# Selenium Manager must never fetch a driver or a browser.
export SE_OFFLINE=true
echo "browser tests: using $KEYGATE_BIN, $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"

exec "$suite_python" -m pytest tests/browser -q "$@"
