# Sourced by tests/sdk/run.sh and tests/browser/run.sh (bash, `set -euo pipefail`): the one
# way the Python suites make their virtualenv and the keygate binary they test.
#
#   prepare_python_suite LABEL VIRTUALENV_DIR REQUIREMENTS_FILE
#
# Creates the virtualenv when it has no python yet, installs REQUIREMENTS_FILE into it, and,
# when KEYGATE_BIN is unset, builds the debug binary with `cargo build --bin keygate` and
# points KEYGATE_BIN at it. Afterwards KEYGATE_BIN is exported and `suite_python` is the
# virtualenv's python. LABEL starts every line it prints ("sdk tests", "browser tests").
# Run it from the repository root.

prepare_python_suite() {
    local label="$1" virtualenv_dir="$2" requirements_file="$3"
    if [ ! -x "$virtualenv_dir/bin/python" ]; then
        echo "$label: creating virtualenv at $virtualenv_dir"
        python3 -m venv "$virtualenv_dir" || {
            echo "$label: 'python3 -m venv' failed (on Debian: apt-get install python3-venv)" >&2
            exit 1
        }
    fi
    "$virtualenv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements_file"

    if [ -z "${KEYGATE_BIN:-}" ]; then
        echo "$label: cargo build --bin keygate"
        cargo build --bin keygate
        KEYGATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/keygate"
    fi
    export KEYGATE_BIN
    suite_python="$virtualenv_dir/bin/python"
}
