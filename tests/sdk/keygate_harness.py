"""Harness for the SDK compatibility suite: starts a real `keygate serve`, runs the
`keygate admin` bootstrap commands, builds official-SDK clients, and remembers every
plaintext secret the suite sees so that the canary check can grep for it afterwards.

Nothing here asserts product behaviour except the small envelope helpers at the bottom,
which every test uses to check the wire shape of successes and errors.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_modelstudio20260210.client import Client as ModelStudioClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

PRIMARY_REGION = "ap-southeast-1"
CLASSIC_REGION = "us-east-1"
SERVER_START_TIMEOUT_SECONDS = 60
ADMIN_COMMAND_TIMEOUT_SECONDS = 60
SERVE_LOG_FILE_NAME = "keygate-serve.log"
ADMIN_LOG_FILE_NAME = "keygate-admin-commands.log"


@dataclass(frozen=True)
class AccessKey:
    """An AccessKey pair as printed by `keygate admin create-access-key --json`."""

    access_key_id: str
    access_key_secret: str = field(repr=False)


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
    change the server under test, plus the ones this suite means to set."""
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


class KeygateServer:
    """One `keygate serve` process with two listeners: ap-southeast-1 and us-east-1.

    `config_path`, when given, is passed as `--config` (the suite's file maps models to the
    upstream test double); `serve_environment` is added to the serve process's environment
    (the upstream's credential variable)."""

    def __init__(self, binary_path: Path, data_dir: Path, config_path: Path | None = None,
                 serve_environment: dict[str, str] | None = None):
        self.binary_path = binary_path
        self.data_dir = data_dir
        self.config_path = config_path
        self.serve_environment = dict(serve_environment or {})
        self.serve_log_path = data_dir / SERVE_LOG_FILE_NAME
        self.admin_log_path = data_dir / ADMIN_LOG_FILE_NAME
        self.root_password = "pw-" + secrets.token_urlsafe(18)
        self.port_by_region: dict[str, int] = {}
        # The plan listener (Token Plan / Coding Plan keys only), in PRIMARY_REGION.
        self.plan_port: int | None = None
        self.process: subprocess.Popen | None = None
        # The AccessKeys made at bootstrap, by owner name ("root" for the account itself).
        self.access_key_by_owner: dict[str, AccessKey] = {}
        # Every plaintext API key and AccessKey secret the suite has seen.
        self.seen_secrets: list[str] = []

    # ---- secrets ----------------------------------------------------------------------

    def remember_secret(self, secret_value: str | None) -> None:
        if secret_value:
            self.seen_secrets.append(secret_value)

    # ---- admin commands (direct database access) --------------------------------------

    def run_admin_command(self, *arguments: str, rust_log: str | None = None) -> dict:
        """Runs `keygate admin <arguments> --json` and returns the parsed JSON object.
        Its stderr is appended to a log file in the data dir (scanned by the canary test)."""
        command = [str(self.binary_path), "admin", *arguments, "--json"]
        completed = subprocess.run(
            command,
            env=environment_for_keygate(self.root_password, rust_log),
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
        created = self.run_admin_command(
            "create-user", "--data-dir", str(self.data_dir), "--account", "root",
            "--name", name, "--role", role,
        )
        assert created.get("name") == name, created
        assert created.get("role") == role, created
        return created

    def create_access_key(self, user_name: str | None = None, rust_log: str | None = None) -> AccessKey:
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
        for region in (PRIMARY_REGION, CLASSIC_REGION):
            port = find_free_local_port(ports_taken)
            ports_taken.add(port)
            self.port_by_region[region] = port
        self.plan_port = find_free_local_port(ports_taken)
        command = [str(self.binary_path), "serve", "--data-dir", str(self.data_dir)]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        for region, port in self.port_by_region.items():
            command += ["--listen", f"127.0.0.1:{port}={region}"]
        command += ["--plan-listen", f"127.0.0.1:{self.plan_port}={PRIMARY_REGION}"]
        log_file = self.serve_log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=environment_for_keygate(self.root_password, rust_log="debug", extra_environment=self.serve_environment),
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
                    with urllib.request.urlopen(self.base_url(region) + "/healthz", timeout=2) as answer:
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
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def serve_log_tail(self, n_characters: int = 4000) -> str:
        try:
            text = self.serve_log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no serve log)"
        return "---- tail of keygate serve log ----\n" + text[-n_characters:]

    # ---- addresses and clients ----------------------------------------------------------

    def endpoint(self, region: str) -> str:
        """host:port, no scheme: what the SDK's Config(endpoint=...) wants."""
        return f"127.0.0.1:{self.port_by_region[region]}"

    def base_url(self, region: str) -> str:
        return f"http://{self.endpoint(region)}"

    def plan_base_url(self) -> str:
        """The plan listener (sk-sp- keys only) of PRIMARY_REGION."""
        return f"http://127.0.0.1:{self.plan_port}"

    def signed_client(self, region: str, access_key: AccessKey) -> ModelStudioClient:
        return ModelStudioClient(
            Config(
                access_key_id=access_key.access_key_id,
                access_key_secret=access_key.access_key_secret,
                endpoint=self.endpoint(region),
                protocol="http",
                connect_timeout=5000,
                read_timeout=15000,
            )
        )

    def bearer_client(self, region: str, session_token: str) -> ModelStudioClient:
        return ModelStudioClient(
            Config(
                bearer_token=session_token,
                endpoint=self.endpoint(region),
                protocol="http",
                connect_timeout=5000,
                read_timeout=15000,
            )
        )

    def log_in(self, account: str, password: str, region: str = PRIMARY_REGION) -> str:
        """POST /keygate/v1/sessions and return the session token."""
        status, body = send_raw_request(
            "POST",
            self.base_url(region) + "/keygate/v1/sessions",
            headers={"content-type": "application/json"},
            body=json.dumps({"account": account, "password": password}).encode(),
        )
        assert 200 <= status < 300, f"login answered {status}: {body!r}"
        token = json.loads(body)["token"]
        assert isinstance(token, str) and token, body
        return token


def send_raw_request(method: str, url: str, headers: dict[str, str] | None = None,
                     body: bytes | None = None) -> tuple[int, bytes]:
    """A plain urllib request; returns (status, body bytes) for 2xx and error statuses."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def send_raw_request_with_headers(method: str, url: str, headers: dict[str, str] | None = None,
                                  body: bytes | None = None):
    """Like send_raw_request, but also returns the response headers."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


# ---- SDK helpers used by several test files ----------------------------------------------


def create_api_key(server: KeygateServer, client: ModelStudioClient, workspace_id: str,
                   description: str, auth=None):
    """CreateApiKey through the SDK; remembers the plaintext for the canary check and
    returns the response body's `api_key`."""
    response = client.create_api_key(
        modelstudio_models.CreateApiKeyRequest(workspace_id=workspace_id, description=description, auth=auth)
    )
    assert_successful_envelope(response)
    created = response.body.api_key
    assert created is not None, response.body.to_map()
    server.remember_secret(created.api_key_value)
    return created


def delete_api_key_quietly(client: ModelStudioClient, api_key_id: int) -> None:
    """Cleanup helper: deletes a key, ignoring ApiKey.NotFound (already gone)."""
    try:
        client.delete_api_key(str(api_key_id))
    except ClientException as error:
        if error.code != "ApiKey.NotFound":
            raise


def assert_successful_envelope(response) -> None:
    """A 2xx answer whose body has success true and a request id."""
    assert 200 <= response.status_code < 300, response.status_code
    body = response.body
    assert body.success is True, body.to_map()
    assert isinstance(body.request_id, str) and body.request_id, body.to_map()
    if body.http_status_code is not None:
        assert isinstance(body.http_status_code, int), body.to_map()
        assert body.http_status_code == response.status_code, body.to_map()


def assert_error_envelope(error_body: dict, expected_code: str | None = None) -> None:
    """Every 4xx body: JSON with success false, code, message and requestId."""
    assert error_body.get("success") is False, error_body
    assert isinstance(error_body.get("code"), str) and error_body["code"], error_body
    assert isinstance(error_body.get("message"), str) and error_body["message"], error_body
    assert isinstance(error_body.get("requestId"), str) and error_body["requestId"], error_body
    if expected_code is not None:
        assert error_body["code"] == expected_code, error_body


def assert_client_exception(error: ClientException, expected_status: int,
                            expected_code: str | None = None) -> None:
    """Checks a ClientException raised by the SDK. The SDK (alibabacloud_tea_openapi
    0.4.6, `Client.do_request`) sets `.status_code`, `.code`, `.request_id`, and `.data` =
    the parsed JSON error body plus a `statusCode` entry that it adds itself."""
    assert isinstance(error, ClientException), repr(error)
    assert error.status_code == expected_status, (error.status_code, error.code, error.data)
    if expected_code is not None:
        assert error.code == expected_code, (error.status_code, error.code, error.data)
    error_body = {name: value for name, value in (error.data or {}).items() if name != "statusCode"}
    assert_error_envelope(error_body, expected_code)


# ---- the gateway (data plane) ---------------------------------------------------------------

# The serve process's environment variable that holds the upstream test double's credential
# (`api_key_env` in the suite's config file).
UPSTREAM_CREDENTIAL_VARIABLE = "KEYGATE_TEST_UPSTREAM_KEY"
# Models of the built-in demo upstream.
DEMO_CHAT_MODEL = "demo-echo"
DEMO_EMBEDDING_MODEL = "demo-embed"
# Models the suite's config routes to the upstream test double (upstream_double.py), in all
# three protocols ...
DOUBLE_CHAT_MODEL = "double-chat"
DOUBLE_EMBEDDING_MODEL = "double-embed"
# ... and one served only through the OpenAI-compatible protocol.
DOUBLE_OPENAI_ONLY_MODEL = "double-openai-only"
# A model whose upstream (all three protocols) is a local port where nothing listens.
UNREACHABLE_UPSTREAM_MODEL = "unreachable-chat"
# The one address keygate believes X-Forwarded-For from (`trusted_proxies`): nginx in
# test_gateway_behind_nginx_auth_request.py connects to keygate from it (`proxy_bind`).
# No other test connects from it, so the other tests see the TCP peer as the client.
TRUSTED_PROXY_ADDRESS = "127.0.0.2"


def write_gateway_test_config(config_path: Path, upstream_double_base_url: str, unreachable_base_url: str) -> Path:
    """The suite's `keygate serve --config` file: the demo stays on, two upstreams point at
    the test double (see upstream_double.py for its paths), one at a closed port, and one
    trusted proxy address."""
    config_path.write_text(
        f"""# Written by tests/sdk/keygate_harness.py for one test session.
trusted_proxies = ["{TRUSTED_PROXY_ADDRESS}/32"]
demo_upstream = true

[[upstreams]]
name = "test-double"
openai_base_url = "{upstream_double_base_url}/openai/v1"
dashscope_base_url = "{upstream_double_base_url}/dashscope/api/v1"
anthropic_base_url = "{upstream_double_base_url}/anthropic"
api_key_env = "{UPSTREAM_CREDENTIAL_VARIABLE}"
models = ["{DOUBLE_CHAT_MODEL}", "{DOUBLE_EMBEDDING_MODEL}"]

[[upstreams]]
name = "test-double-openai-only"
openai_base_url = "{upstream_double_base_url}/openai/v1"
api_key_env = "{UPSTREAM_CREDENTIAL_VARIABLE}"
models = ["{DOUBLE_OPENAI_ONLY_MODEL}"]

[[upstreams]]
name = "test-unreachable"
openai_base_url = "{unreachable_base_url}/v1"
dashscope_base_url = "{unreachable_base_url}/api/v1"
anthropic_base_url = "{unreachable_base_url}/anthropic"
api_key_env = "{UPSTREAM_CREDENTIAL_VARIABLE}"
models = ["{UNREACHABLE_UPSTREAM_MODEL}"]
""",
        encoding="utf-8",
    )
    return config_path


def create_application(server: KeygateServer, session_token: str, workspace_id: str, name: str,
                       region: str = PRIMARY_REGION) -> str:
    """POST /keygate/v1/workspaces/{id}/applications with a session token; returns the appId."""
    status, body = send_raw_request(
        "POST",
        f"{server.base_url(region)}/keygate/v1/workspaces/{workspace_id}/applications",
        headers={"x-acs-bearer-token": session_token, "content-type": "application/json"},
        body=json.dumps({"name": name}).encode(),
    )
    assert status == 200, f"creating an application answered {status}: {body!r}"
    app_id = json.loads(body)["application"]["appId"]
    assert isinstance(app_id, str) and len(app_id) == 32, body
    return app_id


def mint_temporary_api_key(server: KeygateServer, api_key: str, expire_in_seconds: int = 60,
                           region: str = PRIMARY_REGION) -> str:
    """POST /api/v1/tokens?expire_in_seconds=N with a permanent key (the DashScope wire);
    returns the `st-` token, remembered for the canary check."""
    status, body = send_raw_request(
        "POST",
        f"{server.base_url(region)}/api/v1/tokens?expire_in_seconds={expire_in_seconds}",
        headers={"authorization": f"Bearer {api_key}"},
    )
    assert status == 200, f"minting a temporary key answered {status}: {body!r}"
    answer = json.loads(body)
    token = answer["token"]
    server.remember_secret(token)
    assert token.startswith("st-"), "the temporary key does not start with st-"
    assert isinstance(answer["expires_at"], int), answer.keys()
    # Whole seconds on the server: allow for rounding and a slow answer.
    assert expire_in_seconds - 3 <= answer["expires_at"] - time.time() <= expire_in_seconds + 3, answer["expires_at"]
    return token
