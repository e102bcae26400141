#!/usr/bin/env bash
# Runs the real-clients suite (tests/clients): Claude Code, Qwen Code and the Codex CLI,
# installed from npm at the versions of tests/clients/package-lock.json, run
# non-interactively against a freshly built keygate (its demo upstream and the tool double).
#
#   bash tests/clients/run.sh [extra pytest arguments]
#
# KEYGATE_CLIENTS_VENV  where the virtualenv lives (default: <repo>/target/clients-venv)
# KEYGATE_CLIENTS_NPM   where the clients are installed (default: <repo>/target/clients-npm);
#                       npm installs there only when the lock file changed since the last
#                       install, with --ignore-scripts: every client's native binary comes in
#                       its npm optional dependency, and nothing downloads anything else.
# KEYGATE_BIN           a keygate binary to test; when unset, `cargo build --bin keygate`
#                       (debug) builds one and it is used.
# Exits with pytest's status: non-zero when a test fails.
set -euo pipefail

repository_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repository_root"

npm_directory="${KEYGATE_CLIENTS_NPM:-$repository_root/target/clients-npm}"
installed_lock="$npm_directory/installed-from.package-lock.json"
if ! cmp -s tests/clients/package-lock.json "$installed_lock"; then
    echo "clients tests: npm install (tests/clients/package-lock.json) in $npm_directory"
    mkdir -p "$npm_directory"
    rm -rf "$npm_directory/node_modules" "$installed_lock"
    cp tests/clients/package.json tests/clients/package-lock.json "$npm_directory/"
    # `npm install` with the lock, not `npm ci`: Qwen Code names optional packages of other
    # platforms that the registry does not have, which the lock cannot hold and `npm ci`
    # refuses; `npm install` installs what the lock holds and skips those.
    (cd "$npm_directory" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
    cp tests/clients/package-lock.json "$installed_lock"
fi
export KEYGATE_CLIENTS_NODE_MODULES="$npm_directory/node_modules"

source tests/python_harness/python_env.sh
prepare_python_suite "clients tests" "${KEYGATE_CLIENTS_VENV:-$repository_root/target/clients-venv}" tests/clients/requirements.txt
echo "clients tests: using $KEYGATE_BIN"

exec "$suite_python" -m pytest tests/clients -q "$@"
