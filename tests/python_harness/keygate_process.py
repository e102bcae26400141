"""The Python harness shared by the SDK suite (tests/sdk) and the browser suite
(tests/browser): a real `keygate serve` on free local ports with a temporary data dir, the
`keygate admin` bootstrap commands run on that data dir, and the plaintext secrets a suite
has seen, which its canary test then looks for in every file keygate wrote.

Both suites find this directory through `pythonpath` in their pytest.ini. Each suite's own
harness module (tests/sdk/keygate_harness.py, tests/browser/console_harness.py) builds on
this one and adds only what is its own: SDK clients and envelope assertions, or Chromium and
the console's pages. Nothing here asserts product behaviour.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PRIMARY_REGION = "ap-southeast-1"
CLASSIC_REGION = "us-east-1"
SERVER_START_TIMEOUT_SECONDS = 60
ADMIN_COMMAND_TIMEOUT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 15
SERVE_LOG_FILE_NAME = "keygate-serve.log"
ADMIN_LOG_FILE_NAME = "keygate-admin-commands.log"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

# The servers started and not stopped yet, oldest first; a failing test's report carries the
# log of the newest (keygate_pytest.py).
running_servers: list[KeygateProcess] = []


@dataclass(frozen=True)
class AccessKey:
    """An AccessKey pair as printed by `keygate admin create-access-key --json`."""

    access_key_id: str
    access_key_secret: str = field(repr=False)


def keygate_binary_path() -> Path:
    """`$KEYGATE_BIN`, else the debug binary in the cargo target dir (what the suites'
    run.sh build)."""
    from_environment = os.environ.get("KEYGATE_BIN")
    if from_environment:
        return Path(from_environment).resolve()
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPOSITORY_ROOT / "target"))
    return (target_dir / "debug" / "keygate").resolve()


def find_free_local_port(ports_already_taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in ports_already_taken:
            return port


def environment_for_keygate(root_password: str, rust_log: str | None,
                            extra_environment: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any KEYGATE_* or RUST_LOG setting that could
    change the server under test, plus the ones the suite means to set."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("KEYGATE_") and name != "RUST_LOG"
    }
    environment["KEYGATE_ROOT_PASSWORD"] = root_password
    environment["NO_COLOR"] = "1"
    if rust_log is not None:
        environment["RUST_LOG"] = rust_log
    environment.update(extra_environment or {})
    return environment


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *arguments, **keywords):
        return None


def http_exchange(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                  follow_redirects: bool = True,
                  ssl_context: ssl.SSLContext | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One plain urllib request; returns (status, headers, body bytes) for any status,
    error statuses included (and redirects, when they are not followed). `ssl_context`
    says whom an https URL must be certified by."""
    handlers = [urllib.request.HTTPSHandler(context=ssl_context)] if ssl_context is not None else []
    if not follow_redirects:
        handlers.append(_NoRedirect)
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class KeygateProcess:
    """One `keygate serve` process: a listener on a free port for each of `regions`, and a
    plan listener (Token Plan / Coding Plan keys only) in `plan_region` when given.

    `config_path`, when given, is passed as `--config`. `environment` is added to the
    environment of every keygate command this object runs (admin commands and serve),
    `serve_environment` to the serve process's only. The root password is random and set
    through KEYGATE_ROOT_PASSWORD.

    With `tls_files` (a certificate file and its key file), every listener speaks HTTPS:
    they are written as `[[listeners]]` tables into a config file of their own (the
    `config_path` file's settings copied in front), since `--listen` cannot name
    certificates; `ca_file` is then the CA that clients must trust. The serve process logs with RUST_LOG=debug into the data
    dir, and the admin commands' stderr is appended to a file there too, so that a canary
    test scanning the data dir covers every output."""

    def __init__(self, binary_path: Path, data_dir: Path, *,
                 regions: tuple[str, ...] = (PRIMARY_REGION, CLASSIC_REGION),
                 plan_region: str | None = None,
                 config_path: Path | None = None,
                 environment: dict[str, str] | None = None,
                 serve_environment: dict[str, str] | None = None,
                 tls_files: tuple[Path, Path] | None = None,
                 ca_file: Path | None = None):
        self.binary_path = binary_path
        self.data_dir = data_dir
        self.regions = regions
        self.plan_region = plan_region
        self.config_path = config_path
        self.environment = dict(environment or {})
        self.serve_environment = dict(serve_environment or {})
        self.tls_files = tls_files
        self.ca_file = ca_file
        self.scheme = "https" if tls_files is not None else "http"
        self.serve_log_path = data_dir / SERVE_LOG_FILE_NAME
        self.admin_log_path = data_dir / ADMIN_LOG_FILE_NAME
        self.root_password = "root-" + secrets.token_urlsafe(18)
        self.port_by_region: dict[str, int] = {}
        self.plan_port: int | None = None
        self.process: subprocess.Popen | None = None
        # Every plaintext API key, AccessKey secret or token the suite has seen.
        self.seen_secrets: list[str] = []

    # ---- secrets ----------------------------------------------------------------------

    def remember_secret(self, secret_value: str | None) -> str | None:
        """Adds a plaintext to those the canary test looks for; returns it."""
        if secret_value:
            self.seen_secrets.append(secret_value)
        return secret_value

    # ---- admin commands (direct database access) --------------------------------------

    def run_admin_command(self, *arguments: str, rust_log: str | None = None) -> dict:
        """Runs `keygate admin <arguments> --json` and returns the parsed JSON object.
        Before the server has started, with `--init`: the bootstrap that creates the
        database, which `keygate admin` refuses to do without it.
        Its stderr is appended to a log file in the data dir (scanned by the canary test)."""
        initialise = ["--init"] if self.process is None else []
        command = [str(self.binary_path), "admin", *arguments, *initialise, "--json"]
        completed = subprocess.run(
            command,
            env=environment_for_keygate(self.root_password, rust_log, self.environment),
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=ADMIN_COMMAND_TIMEOUT_SECONDS,
        )
        with self.admin_log_path.open("a", encoding="utf-8") as admin_log:
            admin_log.write(f"$ keygate admin {arguments[0]} (exit {completed.returncode})\n")
            admin_log.write(completed.stderr)
        if completed.returncode != 0:
            raise AssertionError(
                f"keygate admin {' '.join(arguments)} failed with exit {completed.returncode}\n"
                f"stdout: {completed.stdout}\nstderr: {completed.stderr}"
            )
        try:
            parsed = json.loads(completed.stdout)
        except json.JSONDecodeError as error:
            raise AssertionError(
                f"keygate admin {arguments[0]} --json did not print one JSON object: {error}\n"
                f"stdout: {completed.stdout!r}"
            ) from None
        assert isinstance(parsed, dict), f"expected a JSON object, got {parsed!r}"
        return parsed

    def create_user(self, name: str, role: str) -> dict:
        """A RAM user of the account root (`keygate admin create-user`)."""
        created = self.run_admin_command(
            "create-user", "--data-dir", str(self.data_dir), "--account", "root",
            "--name", name, "--role", role,
        )
        assert created.get("name") == name, created
        assert created.get("role") == role, created
        return created

    def create_access_key(self, user_name: str | None = None, rust_log: str | None = None) -> AccessKey:
        """An AccessKey of the account root, or of its RAM user `user_name`; its secret is
        remembered for the canary test."""
        arguments = ["create-access-key", "--data-dir", str(self.data_dir), "--account", "root"]
        if user_name is not None:
            arguments += ["--user", user_name]
        created = self.run_admin_command(*arguments, rust_log=rust_log)
        access_key = AccessKey(created["accessKeyId"], created["accessKeySecret"])
        self.remember_secret(access_key.access_key_secret)
        return access_key

    # ---- the server process -----------------------------------------------------------

    def start(self) -> None:
        ports_taken: set[int] = set()
        for region in self.regions:
            port = find_free_local_port(ports_taken)
            ports_taken.add(port)
            self.port_by_region[region] = port
        command = [str(self.binary_path), "serve", "--data-dir", str(self.data_dir)]
        if self.plan_region is not None:
            self.plan_port = find_free_local_port(ports_taken)
        if self.tls_files is not None:
            command += ["--config", str(self.write_https_config())]
        else:
            if self.config_path is not None:
                command += ["--config", str(self.config_path)]
            for region, port in self.port_by_region.items():
                command += ["--listen", f"127.0.0.1:{port}={region}"]
            if self.plan_region is not None:
                command += ["--plan-listen", f"127.0.0.1:{self.plan_port}={self.plan_region}"]
        log_file = self.serve_log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=environment_for_keygate(self.root_password, rust_log="debug",
                                        extra_environment={**self.environment, **self.serve_environment}),
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        try:
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        running_servers.append(self)

    def write_https_config(self) -> Path:
        """The config file of an HTTPS server: `config_path`'s settings, then one
        `[[listeners]]` table per listener with the certificate and key files."""
        certificate_file, key_file = self.tls_files
        listeners = [(port, region, False) for region, port in self.port_by_region.items()]
        if self.plan_region is not None:
            listeners.append((self.plan_port, self.plan_region, True))
        text = self.config_path.read_text(encoding="utf-8") if self.config_path is not None else ""
        for port, region, plan in listeners:
            text += (
                f'\n[[listeners]]\naddr = "127.0.0.1:{port}"\nregion = "{region}"\nplan = {"true" if plan else "false"}\n'
                f'tls_certificate_file = "{certificate_file}"\ntls_key_file = "{key_file}"\n'
            )
        path = self.data_dir / "keygate-https.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """What a client of this server trusts: the test CA over HTTPS, `None` over HTTP."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        pending_regions = set(self.port_by_region)
        while pending_regions:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"keygate serve exited with {self.process.returncode} before it was healthy\n"
                    + self.serve_log_tail()
                )
            for region in sorted(pending_regions):
                try:
                    with urllib.request.urlopen(self.base_url(region) + "/healthz", timeout=2,
                                                context=self.client_ssl_context()) as answer:
                        if answer.status == 200:
                            pending_regions.discard(region)
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
            if pending_regions:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"keygate serve not healthy after {SERVER_START_TIMEOUT_SECONDS}s on "
                        f"{sorted(pending_regions)}\n" + self.serve_log_tail()
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        if self in running_servers:
            running_servers.remove(self)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def serve_log_text(self) -> str:
        """The serve process's whole log so far ("" before it has written one)."""
        try:
            return self.serve_log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def serve_log_tail(self, n_characters: int = 4000) -> str:
        if not self.serve_log_path.exists():
            return "(no serve log)"
        return "---- tail of keygate serve log ----\n" + self.serve_log_text()[-n_characters:]

    # ---- addresses ----------------------------------------------------------------------

    def endpoint(self, region: str = PRIMARY_REGION) -> str:
        """host:port of the region's listener, no scheme."""
        return f"127.0.0.1:{self.port_by_region[region]}"

    def base_url(self, region: str = PRIMARY_REGION) -> str:
        return f"{self.scheme}://{self.endpoint(region)}"

    def plan_base_url(self) -> str:
        """The plan listener (sk-sp- keys only) of `plan_region`."""
        assert self.plan_port is not None, "this server was started without a plan listener"
        return f"{self.scheme}://127.0.0.1:{self.plan_port}"
