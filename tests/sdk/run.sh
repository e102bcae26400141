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
source tests/python_harness/python_env.sh

prepare_python_suite "sdk tests" "${KEYGATE_SDK_VENV:-$repository_root/target/sdk-venv}" tests/sdk/requirements.txt
echo "sdk tests: using $KEYGATE_BIN"

exec "$suite_python" -m pytest tests/sdk -q "$@"
