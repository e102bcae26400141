"""Harness of the real-clients suite: the shared keygate process
(tests/python_harness/keygate_process.py) started with the suite's settings (the demo on,
the tool double as an upstream, JSON log lines), API keys made and disabled through
keygate's API, the installed clients (Claude Code, Qwen Code, Codex CLI) and one way to run
them: in a new session with a temporary HOME, an environment built from nothing but what
the run needs, a timeout that ends the whole process group, and the access-log lines keygate
wrote while the client ran.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from keygate_process import PRIMARY_REGION, REPOSITORY_ROOT, KeygateProcess, http_exchange

# The serve process's variable that holds the tool double's credential (`api_key_env`).
UPSTREAM_CREDENTIAL_VARIABLE = "KEYGATE_TEST_UPSTREAM_KEY"
# The built-in demo upstream's chat model.
DEMO_CHAT_MODEL = "demo-echo"
# The model the suite's settings route to the tool double, in the Anthropic and
# OpenAI-compatible protocols.
DOUBLE_MODEL = "double-tools"
# Where run.sh installs the clients (tests/clients/package.json) unless told otherwise.
DEFAULT_NODE_MODULES = REPOSITORY_ROOT / "target" / "clients-npm" / "node_modules"
# A client's run that should complete (a prompt, a tool loop) gets this long; the machine is
# small and shared, and the clients start slowly.
CLIENT_RUN_TIMEOUT_SECONDS = 120
# issue 14: a client must show keygate's message for a disabled key within 10 s. Counted from
# keygate's first answer to the client (run_client's `seconds_after_first_answer`): the
# clients retry after that answer, if at all; before it they only start, which takes a Node
# client (Qwen Code) 4 to 8 s on this machine kind when its two cores are busy.
DISABLED_KEY_SECONDS_AFTER_REFUSAL = 10


# ---- keygate --------------------------------------------------------------------------------


def write_clients_config(config_path: Path, tool_double_base_url: str) -> Path:
    """The suite's `keygate serve --config` file: the demo on, the tool double as the one
    upstream (`[[upstreams]]`, docs/CONFIG.md), one JSON object per log line."""
    config_path.write_text(
        f"""# Written by tests/clients/clients_harness.py for one test session.
demo_upstream = true
log_format = "json"

[[upstreams]]
name = "tool-double"
anthropic_base_url = "{tool_double_base_url}/anthropic"
openai_base_url = "{tool_double_base_url}/openai/v1"
api_key_env = "{UPSTREAM_CREDENTIAL_VARIABLE}"
models = ["{DOUBLE_MODEL}"]
""",
        encoding="utf-8",
    )
    return config_path


@dataclass(frozen=True)
class AccessLine:
    """One access-log line of keygate's (message `request`: method, path, status)."""

    method: str
    path: str
    status: int


@dataclass(frozen=True)
class ModelCallLine:
    """One model-call line of keygate's (target `keygate::model_call`: key, model, protocol,
    status and the tokens keygate read from the upstream's answer)."""

    key_id: int
    model: str
    protocol: str
    status: int
    input_tokens: int
    output_tokens: int


class ClientsKeygate(KeygateProcess):
    """The suite's `keygate serve` (one listener, ap-southeast-1), with keys made through
    keygate's API under a session of the account, and its log read as JSON lines."""

    def __init__(self, binary_path: Path, data_dir: Path, config_path: Path, serve_environment: dict[str, str]):
        super().__init__(binary_path, data_dir, regions=(PRIMARY_REGION,), config_path=config_path,
                         serve_environment=serve_environment)
        self.session_token: str | None = None

    def log_in_as_root(self) -> None:
        status, _headers, body = http_exchange(
            "POST", self.base_url() + "/keygate/v1/sessions", {"content-type": "application/json"},
            json.dumps({"account": "root", "password": self.root_password}).encode(),
        )
        assert status == 200, f"logging in answered {status}: {body!r}"
        self.session_token = self.remember_secret(json.loads(body)["token"])

    def _management(self, method: str, path: str) -> dict:
        assert self.session_token, "log_in_as_root first"
        status, _headers, body = http_exchange(method, self.base_url() + path, {"x-acs-bearer-token": self.session_token})
        assert status == 200, f"{method} {path} answered {status}: {body!r}"
        return json.loads(body)

    def create_api_key(self, description: str) -> tuple[int, str]:
        """CreateApiKey (`POST /modelstudio/apikeys`) in root's default workspace, permission
        All; returns (apiKeyId, plaintext), the plaintext remembered for the canary test."""
        query = "description=" + description.replace(" ", "%20")
        created = self._management("POST", f"/modelstudio/apikeys?{query}")["apiKey"]
        return created["apiKeyId"], self.remember_secret(created["apiKeyValue"])

    def disable_api_key(self, api_key_id: int) -> None:
        """DisableApiKey (`PUT /modelstudio/apikeys/{id}/disable`)."""
        self._management("PUT", f"/modelstudio/apikeys/{api_key_id}/disable")

    def log_size(self) -> int:
        try:
            return self.serve_log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_objects_since(self, offset: int) -> list[dict]:
        """The JSON log lines written after byte `offset` (other lines are skipped)."""
        with self.serve_log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
        objects = []
        for line in text.splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                objects.append(parsed)
        return objects

    def access_lines_since(self, offset: int) -> list[AccessLine]:
        return [
            AccessLine(entry["method"], entry["path"], int(entry["status"]))
            for entry in self.log_objects_since(offset)
            if entry.get("message") == "request" and "path" in entry and "status" in entry
        ]

    def model_call_lines_since(self, offset: int) -> list[ModelCallLine]:
        return [
            ModelCallLine(int(entry["key_id"]), entry["model"], entry["protocol"], int(entry["status"]),
                          int(entry.get("input_tokens") or 0), int(entry.get("output_tokens") or 0))
            for entry in self.log_objects_since(offset)
            if entry.get("target") == "keygate::model_call"
        ]


# ---- the clients ------------------------------------------------------------------------------


def node_modules_directory() -> Path:
    """`$KEYGATE_CLIENTS_NODE_MODULES` (run.sh sets it), else target/clients-npm/node_modules."""
    return Path(os.environ.get("KEYGATE_CLIENTS_NODE_MODULES") or DEFAULT_NODE_MODULES).resolve()


def _npm_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


@dataclass(frozen=True)
class InstalledClient:
    """A client as installed by run.sh: the command that starts it and its version."""

    name: str
    command: tuple[str, ...]
    version: str


def claude_code_command(node_modules: Path) -> tuple[str, ...]:
    """Claude Code's native binary, from its platform package (an npm optional dependency);
    run.sh installs with --ignore-scripts, so the wrapper's bin/claude.exe is still the
    postinstall's placeholder and is not used."""
    return (str(node_modules / "@anthropic-ai" / f"claude-code-linux-{_npm_arch()}" / "claude"),)


def qwen_code_command(node_modules: Path) -> tuple[str, ...]:
    return ("node", str(node_modules / "@qwen-code" / "qwen-code" / "cli-entry.js"))


def codex_command(node_modules: Path) -> tuple[str, ...]:
    """codex.js, which runs the native binary of the platform package (an npm optional
    dependency, `@openai/codex-linux-x64`) with its bundled ripgrep on PATH."""
    return ("node", str(node_modules / "@openai" / "codex" / "bin" / "codex.js"))


def package_version(node_modules: Path, package: str) -> str:
    return json.loads((node_modules / package / "package.json").read_text(encoding="utf-8"))["version"]


def base_environment(home: Path) -> dict[str, str]:
    """What every client run starts from: PATH, a temporary HOME (and XDG dirs in it), a
    locale, no proxy, no colour. Nothing else of the caller's environment (no provider
    keys a developer may have set) reaches a client."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return environment


@dataclass
class ClientRun:
    """One run of a client: its exit status (None when the timeout ended it), output, time,
    and what keygate logged meanwhile."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    access_lines: list[AccessLine] = field(default_factory=list)
    model_calls: list[ModelCallLine] = field(default_factory=list)
    # When the run watched for it: seconds from the start to keygate's first answer.
    first_answer_seconds: float | None = None

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr

    def describe(self) -> str:
        """For assertion messages: the exit, the time, the paths keygate saw, and the output
        (keys never appear in a client's output; the canary test checks keygate's files)."""
        paths = "\n".join(f"  {line.method} {line.path} -> {line.status}" for line in self.access_lines) or "  (none)"
        first_answer = ("" if self.first_answer_seconds is None
                        else f" (keygate's first answer at {self.first_answer_seconds:.1f}s)")
        return (
            f"exit {self.returncode} after {self.seconds:.1f}s{first_answer}\nkeygate saw:\n{paths}\n"
            f"---- stdout ----\n{self.stdout[-4000:]}\n---- stderr ----\n{self.stderr[-4000:]}"
        )


def run_client(argv: tuple[str, ...], environment: dict[str, str], cwd: Path, keygate: ClientsKeygate,
               timeout_seconds: float, seconds_after_first_answer: float | None = None) -> ClientRun:
    """Runs a client to its end or until it is stopped, in a session of its own (stopping it
    ends every process it started), stdin closed; keygate's log lines written meanwhile are
    kept. The client is stopped after `timeout_seconds`, and, with
    `seconds_after_first_answer`, that many seconds after keygate answered its first
    request (its first access-log line): the bound on what a client does once it has been
    refused, whatever its start-up took on a loaded machine. The run waits a moment after
    the client for keygate's model-call lines (written when a stream's last byte has gone)."""
    offset = keygate.log_size()
    started = time.monotonic()
    deadline = started + timeout_seconds
    first_answer_seconds = None
    output_directory = Path(environment["TMPDIR"])
    with (output_directory / "client.stdout").open("w+", encoding="utf-8", errors="replace") as stdout_file, \
            (output_directory / "client.stderr").open("w+", encoding="utf-8", errors="replace") as stderr_file:
        process = subprocess.Popen(argv, env=environment, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout_file,
                                   stderr=stderr_file, text=True, start_new_session=True)
        returncode = None
        while True:
            returncode = process.poll()
            if returncode is not None:
                break
            now = time.monotonic()
            if seconds_after_first_answer is not None and first_answer_seconds is None \
                    and keygate.access_lines_since(offset):
                first_answer_seconds = now - started
                deadline = min(deadline, now + seconds_after_first_answer)
            if now >= deadline:
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        # Stopped, or exited and maybe left children behind (shells of its tools).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout, stderr = stdout_file.read(), stderr_file.read()
    time.sleep(0.3)
    return ClientRun(argv, returncode, stdout, stderr, seconds, keygate.access_lines_since(offset),
                     keygate.model_call_lines_since(offset), first_answer_seconds)
