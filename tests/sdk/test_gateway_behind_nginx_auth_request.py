"""Real nginx (Debian's `nginx` package, started by this module) in front of keygate, using
`auth_request` against keygate's `/auth/verify`, configured with the example in README.md
itself: the test reads the README's `nginx` block and changes only the addresses, the
provider key and the address nginx connects from. A good key is let through to the upstream
test double with the key's identity passed on and the provider's own credential instead of
the client's key; bad ones are refused: no key, an unknown key and a disabled key get 401, a
Custom key from an address outside its whitelist gets 403 (a forged X-Forwarded-For
changes nothing), a key limited to some models gets 403 whatever X-Keygate-Model the client
sends (nginx cannot read the body's model, so the example clears that header), and an
address throttled for failed authentications gets 429 (the example maps nginx's 500 back).

nginx connects to keygate from 127.0.0.2 (`proxy_bind`, added by the test), the one
`trusted_proxies` address of the suite's config, so keygate believes its X-Forwarded-For and
applies IP whitelists and throttling to the real client address.

The test needs the `nginx` binary (Debian: `apt-get install nginx`, built with
http_auth_request_module); without it, the module is skipped, loudly. nginx runs unprivileged
paths only: its config, pid, logs and temp directories are all in a temporary directory.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    PRIMARY_REGION,
    TRUSTED_PROXY_ADDRESS,
    assert_successful_envelope,
    create_api_key,
    delete_api_key_quietly,
    find_free_local_port,
    send_raw_request,
)
from upstream_double import PLAIN_BASE_PATH

NGINX_BINARY = shutil.which("nginx") or next(
    (candidate for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(candidate, os.X_OK)), None
)
if NGINX_BINARY is None:
    pytest.skip(
        "!!! nginx is not installed, so the nginx auth_request tests did NOT run "
        "(Debian: apt-get install -y nginx; CI installs it) !!!",
        allow_module_level=True,
    )

NGINX_START_TIMEOUT_SECONDS = 20
# Client source addresses on the loopback network (all of 127.0.0.0/8 is local on Linux):
# each test that cares about the client's address connects from its own one.
WHITELISTED_CLIENT_ADDRESS = "127.0.0.5"
THROTTLED_CLIENT_ADDRESS = "127.0.0.9"
NEIGHBOUR_OF_THROTTLED_CLIENT_ADDRESS = "127.0.0.10"
# keygate's default `failed_authentications_per_minute` is 30; a few more must reach 429.
MAX_FAILED_ATTEMPTS_BEFORE_THROTTLING = 40
REVOCATION_WAIT_SECONDS = 2.0
PROXIED_PATH = "/compatible-mode/v1/chat/completions"


README_PATH = Path(__file__).resolve().parents[2] / "README.md"
# What the README's example says, and what this test puts in its place.
README_KEYGATE_ADDRESS = "127.0.0.1:8080"
README_PROVIDER_BASE = "https://dashscope-intl.aliyuncs.com"
README_PROVIDER_KEY = "YOUR_PROVIDER_KEY"


def readme_nginx_example() -> str:
    """The first ```nginx block of README.md."""
    text = README_PATH.read_text()
    start = text.index("```nginx\n") + len("```nginx\n")
    return text[start:text.index("```", start)]


def nginx_configuration(work_dir: Path, listen_port: int, keygate_port: int, upstream_double_port: int,
                        upstream_secret: str) -> str:
    example = readme_nginx_example()
    for placeholder in (README_KEYGATE_ADDRESS, README_PROVIDER_BASE, README_PROVIDER_KEY, "internal;"):
        assert placeholder in example, f"README's nginx example no longer has {placeholder!r}"
    locations = (
        example.replace(README_KEYGATE_ADDRESS, f"127.0.0.1:{keygate_port}")
        .replace(README_PROVIDER_BASE, f"http://127.0.0.1:{upstream_double_port}{PLAIN_BASE_PATH}")
        .replace(README_PROVIDER_KEY, upstream_secret)
        # The suite's keygate trusts only 127.0.0.2 as a proxy; the README's trusts 127.0.0.1.
        .replace("internal;", f"internal;\n    proxy_bind {TRUSTED_PROXY_ADDRESS};")
    )
    user_line = "user root;" if os.geteuid() == 0 else "# not root: workers run as the current user"
    return f"""# Written by {Path(__file__).name} around the example in README.md; every path is inside {work_dir}.
{user_line}
daemon off;
worker_processes 1;
pid {work_dir}/nginx.pid;
error_log {work_dir}/error.log info;
events {{ worker_connections 64; }}

http {{
    access_log {work_dir}/access.log;
    client_body_temp_path {work_dir}/client_body_temp;
    proxy_temp_path {work_dir}/proxy_temp;
    fastcgi_temp_path {work_dir}/fastcgi_temp;
    uwsgi_temp_path {work_dir}/uwsgi_temp;
    scgi_temp_path {work_dir}/scgi_temp;

    server {{
        listen 127.0.0.1:{listen_port};
        # The example names no header in the response; the test wants to see the key's id.
        add_header X-Keygate-Key-Id $keygate_key_id always;
{locations}
    }}
}}
"""


@dataclass
class RunningNginx:
    port: int
    work_dir: Path
    process: subprocess.Popen

    def log_tail(self) -> str:
        try:
            return (self.work_dir / "error.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return "(no nginx error.log)"


@pytest.fixture(scope="module")
def nginx_in_front_of_keygate(keygate_server, upstream_double, upstream_secret, tmp_path_factory) -> RunningNginx:
    work_dir = tmp_path_factory.mktemp("nginx")
    port = find_free_local_port(set(keygate_server.port_by_region.values()) | {upstream_double.port})
    config_path = work_dir / "nginx.conf"
    config_path.write_text(nginx_configuration(
        work_dir, port, keygate_server.port_by_region[PRIMARY_REGION], upstream_double.port, upstream_secret,
    ))
    check = subprocess.run([NGINX_BINARY, "-t", "-c", str(config_path), "-p", str(work_dir), "-e", str(work_dir / "error.log")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"nginx -t refused the configuration:\n{check.stderr}"
    output_file = (work_dir / "nginx-output.log").open("wb")
    process = subprocess.Popen(
        [NGINX_BINARY, "-c", str(config_path), "-p", str(work_dir), "-e", str(work_dir / "error.log")],
        stdin=subprocess.DEVNULL, stdout=output_file, stderr=subprocess.STDOUT,
    )
    output_file.close()
    nginx = RunningNginx(port, work_dir, process)
    try:
        wait_until_listening(nginx)
        yield nginx
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until_listening(nginx: RunningNginx) -> None:
    deadline = time.monotonic() + NGINX_START_TIMEOUT_SECONDS
    while True:
        if nginx.process.poll() is not None:
            raise AssertionError(f"nginx exited with {nginx.process.returncode}\n{nginx.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening after {NGINX_START_TIMEOUT_SECONDS}s\n{nginx.log_tail()}") from None
            time.sleep(0.1)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def send_through_nginx(nginx: RunningNginx, api_key: str | None, marker: str = "",
                       client_address: str = "127.0.0.1", extra_headers: dict[str, str] | None = None) -> Answer:
    """POSTs a chat-completion-shaped body to nginx from `client_address`."""
    connection = http.client.HTTPConnection("127.0.0.1", nginx.port, source_address=(client_address, 0), timeout=15)
    headers = {"content-type": "application/json", **(extra_headers or {})}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    body = ('{"model": "double-chat", "messages": [{"role": "user", "content": "%s"}]}' % marker).encode()
    try:
        connection.request("POST", PROXIED_PATH, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def unique_marker(label: str) -> str:
    return f"{label} {uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def all_permissions_key_for_nginx(keygate_server, root_client, default_workspace_id):
    created = create_api_key(keygate_server, root_client, default_workspace_id, "nginx tests: All")
    yield created
    delete_api_key_quietly(root_client, created.api_key_id)


@pytest.fixture
def key_to_disable(keygate_server, root_client, default_workspace_id):
    created = create_api_key(keygate_server, root_client, default_workspace_id, "nginx tests: disable")
    yield created
    delete_api_key_quietly(root_client, created.api_key_id)


@pytest.fixture(scope="module")
def key_whitelisting_one_client_address(keygate_server, root_client, default_workspace_id):
    auth = modelstudio_models.CreateApiKeyRequestAuth(
        type="Custom",
        access_ips=[WHITELISTED_CLIENT_ADDRESS],
        model_access_scope=modelstudio_models.CreateApiKeyRequestAuthModelAccessScope(allow_all_models=True),
    )
    created = create_api_key(keygate_server, root_client, default_workspace_id, "nginx tests: whitelist", auth)
    yield created
    delete_api_key_quietly(root_client, created.api_key_id)


def status_after_waiting_for(nginx: RunningNginx, api_key: str, wanted_status: int) -> int:
    """Polls until nginx answers `wanted_status` or the revocation bound has passed."""
    deadline = time.monotonic() + REVOCATION_WAIT_SECONDS
    while True:
        status = send_through_nginx(nginx, api_key).status
        if status == wanted_status or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


# ---- let through ----------------------------------------------------------------------------


def test_good_key_is_let_through_with_its_identity_in_the_response_and_upstream(
        nginx_in_front_of_keygate, all_permissions_key_for_nginx, default_workspace_id, upstream_double, upstream_secret):
    marker = unique_marker("nginx good key")
    answer = send_through_nginx(nginx_in_front_of_keygate, all_permissions_key_for_nginx.api_key_value, marker)
    assert answer.status == 200, (answer.status, answer.body, nginx_in_front_of_keygate.log_tail())
    assert answer.headers.get("X-Keygate-Key-Id") == str(all_permissions_key_for_nginx.api_key_id)
    assert b'"upstream-double"' in answer.body, answer.body

    [forwarded] = upstream_double.records_mentioning(marker)
    assert forwarded.path == PLAIN_BASE_PATH + "/compatible-mode/v1/chat/completions"
    assert forwarded.headers.get("x-keygate-key-id") == str(all_permissions_key_for_nginx.api_key_id)
    assert forwarded.headers.get("x-keygate-workspace") == default_workspace_id
    assert forwarded.headers.get("authorization") == f"Bearer {upstream_secret}", "nginx did not swap in the upstream credential"
    client_key = all_permissions_key_for_nginx.api_key_value
    assert not [name for name, value in forwarded.headers.items() if client_key in value], "the client's key reached the upstream"


def test_the_clients_key_never_reaches_the_provider_in_any_header(
        nginx_in_front_of_keygate, all_permissions_key_for_nginx, upstream_double, upstream_secret):
    client_key = all_permissions_key_for_nginx.api_key_value
    marker = unique_marker("nginx key in x-api-key")
    answer = send_through_nginx(nginx_in_front_of_keygate, client_key, marker, extra_headers={"x-api-key": client_key})
    assert answer.status == 200, (answer.status, answer.body)
    [forwarded] = upstream_double.records_mentioning(marker)
    assert forwarded.headers.get("authorization") == f"Bearer {upstream_secret}"
    assert not [name for name, value in forwarded.headers.items() if client_key in value], forwarded.headers


@pytest.fixture(scope="module")
def key_limited_to_one_model(keygate_server, root_client, default_workspace_id):
    auth = modelstudio_models.CreateApiKeyRequestAuth(
        type="Custom",
        model_access_scope=modelstudio_models.CreateApiKeyRequestAuthModelAccessScope(
            allow_all_models=False, accessible_models=["double-chat"]),
    )
    created = create_api_key(keygate_server, root_client, default_workspace_id, "nginx tests: one model", auth)
    yield created
    delete_api_key_quietly(root_client, created.api_key_id)


def test_a_key_limited_to_some_models_is_refused_whatever_model_the_client_claims(
        nginx_in_front_of_keygate, key_limited_to_one_model, upstream_double):
    """nginx cannot read the body, so it cannot tell keygate the model: the example clears
    X-Keygate-Model, and keygate refuses a key with a model scope rather than guess."""
    for claimed in (None, "double-chat"):
        marker = unique_marker(f"nginx model claim {claimed}")
        headers = {"X-Keygate-Model": claimed} if claimed else {}
        answer = send_through_nginx(nginx_in_front_of_keygate, key_limited_to_one_model.api_key_value, marker,
                                    extra_headers=headers)
        assert answer.status == 403, (claimed, answer.status, answer.body)
        assert upstream_double.records_mentioning(marker) == []


# ---- refused --------------------------------------------------------------------------------


def test_missing_key_is_refused_with_401(nginx_in_front_of_keygate, upstream_double):
    marker = unique_marker("nginx no key")
    answer = send_through_nginx(nginx_in_front_of_keygate, None, marker)
    assert answer.status == 401, (answer.status, answer.body)
    assert not answer.headers.get("X-Keygate-Key-Id")
    assert upstream_double.records_mentioning(marker) == []


@pytest.mark.parametrize("bad_key", [
    "sk-ws-" + secrets.token_hex(19),                       # well-formed, bad checksum
    "sk-" + secrets.token_hex(16),                          # classic shape, unknown
    "st-" + secrets.token_urlsafe(40).replace("-", "a").replace("_", "b"),  # temporary shape, bad tag
    "not a key at all",
])
def test_bad_key_is_refused_with_401(bad_key, nginx_in_front_of_keygate, upstream_double):
    marker = unique_marker("nginx bad key")
    answer = send_through_nginx(nginx_in_front_of_keygate, bad_key, marker)
    assert answer.status == 401, (answer.status, answer.body)
    assert upstream_double.records_mentioning(marker) == []


def test_disabled_key_is_refused_with_401_until_enabled_again(
        nginx_in_front_of_keygate, key_to_disable, root_client):
    api_key = key_to_disable.api_key_value
    assert send_through_nginx(nginx_in_front_of_keygate, api_key).status == 200

    disabled = root_client.disable_api_key(str(key_to_disable.api_key_id), modelstudio_models.DisableApiKeyRequest())
    assert_successful_envelope(disabled)
    assert status_after_waiting_for(nginx_in_front_of_keygate, api_key, 401) == 401

    enabled = root_client.enable_api_key(str(key_to_disable.api_key_id), modelstudio_models.EnableApiKeyRequest())
    assert_successful_envelope(enabled)
    assert status_after_waiting_for(nginx_in_front_of_keygate, api_key, 200) == 200


def test_custom_key_from_a_non_whitelisted_address_is_refused_with_403(
        nginx_in_front_of_keygate, key_whitelisting_one_client_address, upstream_double):
    api_key = key_whitelisting_one_client_address.api_key_value
    marker = unique_marker("nginx not whitelisted")
    refused = send_through_nginx(nginx_in_front_of_keygate, api_key, marker, client_address="127.0.0.1")
    assert refused.status == 403, (refused.status, refused.body)
    assert upstream_double.records_mentioning(marker) == []

    # nginx sets X-Forwarded-For to the connecting address: a forged one changes nothing.
    forged = send_through_nginx(nginx_in_front_of_keygate, api_key, client_address="127.0.0.1",
                                extra_headers={"X-Forwarded-For": WHITELISTED_CLIENT_ADDRESS})
    assert forged.status == 403, (forged.status, forged.body)

    allowed = send_through_nginx(nginx_in_front_of_keygate, api_key, client_address=WHITELISTED_CLIENT_ADDRESS)
    assert allowed.status == 200, (allowed.status, allowed.body, nginx_in_front_of_keygate.log_tail())
    assert allowed.headers.get("X-Keygate-Key-Id") == str(key_whitelisting_one_client_address.api_key_id)


def test_x_forwarded_for_from_an_untrusted_peer_is_not_believed(keygate_server, key_whitelisting_one_client_address):
    """Straight to keygate from 127.0.0.1 (not a trusted proxy): its X-Forwarded-For naming
    the whitelisted address is ignored, so the key is refused."""
    status, body = send_raw_request(
        "GET",
        f"{keygate_server.base_url(PRIMARY_REGION)}/auth/verify",
        headers={
            "authorization": f"Bearer {key_whitelisting_one_client_address.api_key_value}",
            "x-forwarded-for": WHITELISTED_CLIENT_ADDRESS,
            "x-original-uri": PROXIED_PATH,
        },
    )
    assert status == 403, (status, body)
    assert b'"AccessDenied"' in body, body


def test_throttled_client_address_gets_429_through_the_error_page_mapping(
        nginx_in_front_of_keygate, all_permissions_key_for_nginx):
    statuses = []
    for _ in range(MAX_FAILED_ATTEMPTS_BEFORE_THROTTLING):
        answer = send_through_nginx(nginx_in_front_of_keygate, "sk-ws-" + secrets.token_hex(19),
                                    client_address=THROTTLED_CLIENT_ADDRESS)
        statuses.append(answer.status)
        if answer.status != 401:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}, statuses
    assert answer.headers.get("Retry-After", "").isdigit(), dict(answer.headers)

    # A valid key from the throttled address still passes; other addresses are not throttled.
    good = send_through_nginx(nginx_in_front_of_keygate, all_permissions_key_for_nginx.api_key_value,
                              client_address=THROTTLED_CLIENT_ADDRESS)
    assert good.status == 200, (good.status, good.body)
    neighbour = send_through_nginx(nginx_in_front_of_keygate, "sk-ws-" + secrets.token_hex(19),
                                   client_address=NEIGHBOUR_OF_THROTTLED_CLIENT_ADDRESS)
    assert neighbour.status == 401, "keygate throttled the proxy's address instead of the client's"
