#!/usr/bin/env bash
# Runs the Python SDK compatibility suite (tests/sdk) against a freshly built keygate.
#
#   bash tests/sdk/run.sh [extra pytest arguments]
#
# KEYGATE_SDK_VENV  where the virtualenv lives (default: <repo>/target/sdk-venv)
# KEYGATE_BIN       a keygate binary to test; when unset, `cargo build --bin keygate` (debug)
#                   builds one and it is used.
# Exits with pytest's status: non-zero when a test fails.
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repository_root"

virtualenv_dir="${KEYGATE_SDK_VENV:-$repository_root/target/sdk-venv}"
if [ ! -x "$virtualenv_dir/bin/python" ]; then
    echo "sdk tests: creating virtualenv at $virtualenv_dir"
    python3 -m venv "$virtualenv_dir" || {
        echo "sdk tests: 'python3 -m venv' failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$virtualenv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt

if [ -z "${KEYGATE_BIN:-}" ]; then
    echo "sdk tests: cargo build --bin keygate"
    cargo build --bin keygate
    KEYGATE_BIN="${CARGO_TARGET_DIR:-$repository_root/target}/debug/keygate"
fi
export KEYGATE_BIN
echo "sdk tests: using $KEYGATE_BIN"

exec "$virtualenv_dir/bin/python" -m pytest tests/sdk -q "$@"
