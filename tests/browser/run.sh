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
# KEYGATE_SCREENSHOT_DIR where the screenshots go (default: <repo>/docs/screenshots)
# Exits with pytest's status: non-zero when a test fails.
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repository_root"

for needed in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "$needed" ]; then
        echo "browser tests: $needed is missing (on Debian: apt-get install -y chromium chromium-driver)" >&2
        exit 1
    fi
done

virtualenv_dir="${KEYGATE_BROWSER_VENV:-$repository_root/target/browser-venv}"
if [ ! -x "$virtualenv_dir/bin/python" ]; then
    echo "browser tests: creating virtualenv at $virtualenv_dir"
    python3 -m venv "$virtualenv_dir" || {
        echo "browser tests: 'python3 -m venv' failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$virtualenv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/browser/requirements.txt

if [ -z "${KEYGATE_BIN:-}" ]; then
    echo "browser tests: cargo build --bin keygate"
    cargo build --bin keygate
    KEYGATE_BIN="${CARGO_TARGET_DIR:-$repository_root/target}/debug/keygate"
fi
export KEYGATE_BIN
# Selenium Manager must never fetch a driver or a browser.
export SE_OFFLINE=true
echo "browser tests: using $KEYGATE_BIN, $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"

exec "$virtualenv_dir/bin/python" -m pytest tests/browser -q "$@"
