"""Harness of the SDK compatibility suite: the shared keygate process
(tests/python_harness/keygate_process.py) with official-SDK clients, the suite's config file
for the gateway tests, and the helpers several test files use to call keygate and check the
wire shape of its successes and errors (the envelope assertions at the bottom).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_modelstudio20260210.client import Client as ModelStudioClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

# The shared harness; the test files import its names from here too, their one harness module.
from keygate_process import (  # noqa: F401 - CLASSIC_REGION, find_free_local_port: for the test files
    CLASSIC_REGION,
    PRIMARY_REGION,
    AccessKey,
    KeygateProcess,
    find_free_local_port,
    http_exchange,
)


class KeygateServer(KeygateProcess):
    """The suite's `keygate serve`: listeners for ap-southeast-1 and us-east-1 and a plan
    listener in ap-southeast-1, started with the suite's config file (it maps models to the
    upstream test double) and `serve_environment` (the upstream's credential variable); plus
    official-SDK clients and sessions of keygate's own API."""

    def __init__(self, binary_path: Path, data_dir: Path, config_path: Path | None = None,
                 serve_environment: dict[str, str] | None = None, **process_options):
        super().__init__(binary_path, data_dir, plan_region=PRIMARY_REGION, config_path=config_path,
                         serve_environment=serve_environment, **process_options)
        # The AccessKeys made at bootstrap, by owner name ("root" for the account itself).
        self.access_key_by_owner: dict[str, AccessKey] = {}

    # ---- clients ------------------------------------------------------------------------

    def signed_client(self, region: str, access_key: AccessKey) -> ModelStudioClient:
        return ModelStudioClient(
            Config(
                access_key_id=access_key.access_key_id,
                access_key_secret=access_key.access_key_secret,
                endpoint=self.endpoint(region),
                protocol=self.scheme,
                # Over HTTPS: the test CA, which the SDK hands to `requests` as `verify`.
                ca=str(self.ca_file) if self.ca_file is not None else None,
                connect_timeout=5000,
                read_timeout=15000,
            )
        )

    def bearer_client(self, region: str, session_token: str) -> ModelStudioClient:
        return ModelStudioClient(
            Config(
                bearer_token=session_token,
                endpoint=self.endpoint(region),
                protocol=self.scheme,
                ca=str(self.ca_file) if self.ca_file is not None else None,
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
    status, _headers, answer_body = http_exchange(method, url, headers, body)
    return status, answer_body


def send_raw_request_with_headers(method: str, url: str, headers: dict[str, str] | None = None,
                                  body: bytes | None = None):
    """Like send_raw_request, but also returns the response headers."""
    return http_exchange(method, url, headers, body)


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
