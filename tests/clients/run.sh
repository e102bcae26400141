#!/usr/bin/env bash
# Runs the real-clients suite (tests/clients): Claude Code, Qwen Code and the Codex CLI,
# installed from npm at the versions of tests/clients/package-lock.json, run
# non-interactively against a freshly built keygate (its demo upstream and the tool double).
#
#   bash tests/clients/run.sh [extra pytest arguments]
#
# KEYGATE_CLIENTS_VENV  where the virtualenv lives (default: <repo>/target/clients-venv)
# KEYGATE_CLIENTS_NPM   where the clients are installed (default: <repo>/target/clients-npm);
#                       `npm ci` runs there only when the lock file changed since the last
#                       install, with --ignore-scripts: every client's native binary comes in
#                       its npm optional dependency, and nothing downloads anything else.
# KEYGATE_BIN           a keygate binary to test; when unset, `cargo build --bin keygate`
#                       (debug) builds one and it is used.
# Exits with pytest's status: non-zero when a test fails.
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repository_root"

npm_directory="${KEYGATE_CLIENTS_NPM:-$repository_root/target/clients-npm}"
if ! cmp -s tests/clients/package-lock.json "$npm_directory/package-lock.json" \
    || [ ! -f "$npm_directory/node_modules/.package-lock.json" ]; then
    echo "clients tests: npm ci in $npm_directory"
    mkdir -p "$npm_directory"
    cp tests/clients/package.json tests/clients/package-lock.json "$npm_directory/"
    (cd "$npm_directory" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
export KEYGATE_CLIENTS_NODE_MODULES="$npm_directory/node_modules"

source tests/python_harness/python_env.sh
prepare_python_suite "clients tests" "${KEYGATE_CLIENTS_VENV:-$repository_root/target/clients-venv}" tests/clients/requirements.txt
echo "clients tests: using $KEYGATE_BIN"

exec "$suite_python" -m pytest tests/clients -q "$@"
