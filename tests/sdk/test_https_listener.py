"""keygate serving HTTPS itself (docs/DEPLOYMENT.md, "On the internet"): a `keygate serve`
of its own whose listeners have a certificate (`[[listeners]]` `tls_certificate_file` and
`tls_key_file`) issued at test time by a test CA (tests/python_harness/
certificate_authority.py), and each official SDK pointed at `https://` and told to trust
that CA the way its users would:

- the Model Studio management SDK: `Config(protocol="https", ca=...)`;
- `dashscope`: `REQUESTS_CA_BUNDLE` (it calls through `requests`);
- `openai` and `anthropic`: their own `DefaultHttpxClient(verify=<SSL context>)` as
  `http_client` (anthropic's is built on `httpx2`, which refuses a plain `httpx` client).

And what an operator relies on: plain HTTP to the HTTPS port gets no answer, SIGHUP makes
new connections see a new certificate without a restart, and the console's cookies are
`Secure`.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import time

import anthropic
import dashscope
import httpx
import openai
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from certificate_authority import TestCertificateAuthority, certificate_der
from keygate_harness import (
    DEMO_CHAT_MODEL,
    PRIMARY_REGION,
    KeygateServer,
    assert_successful_envelope,
    create_api_key,
    http_exchange,
)

RELOAD_TIMEOUT_SECONDS = 30
DEMO_REPLY_PREFIX = "[keygate demo] echo: "


@pytest.fixture(scope="module")
def certificate_authority(tmp_path_factory) -> TestCertificateAuthority:
    return TestCertificateAuthority(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="module")
def https_server(keygate_binary, tmp_path_factory, certificate_authority) -> KeygateServer:
    """A server whose every listener speaks HTTPS, the demo models on; its certificate
    files are copies the reload test may replace."""
    certificate_file, key_file = certificate_authority.issue("first")
    served_directory = tmp_path_factory.mktemp("served-certificate")
    served = (served_directory / "server.pem", served_directory / "server.key")
    shutil.copy(certificate_file, served[0])
    shutil.copy(key_file, served[1])
    server = KeygateServer(
        keygate_binary, tmp_path_factory.mktemp("keygate-https-data"),
        tls_files=served, ca_file=certificate_authority.certificate_file,
    )
    server.access_key_by_owner["root"] = server.create_access_key()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def https_root_client(https_server):
    return https_server.signed_client(PRIMARY_REGION, https_server.access_key_by_owner["root"])


@pytest.fixture(scope="module")
def https_api_key(https_server, https_root_client) -> str:
    """A key with every permission, made over HTTPS with the management SDK."""
    listed = https_root_client.list_workspaces(modelstudio_models.ListWorkspacesRequest())
    assert_successful_envelope(listed)
    workspace_id = listed.body.workspaces[0].workspace_id
    created = create_api_key(https_server, https_root_client, workspace_id, "https listener")
    return created.api_key_value


def test_the_management_sdk_works_over_https(https_server, https_root_client, https_api_key):
    assert https_server.base_url().startswith("https://")
    listed = https_root_client.list_api_keys(modelstudio_models.ListApiKeysRequest())
    assert_successful_envelope(listed)
    assert listed.body.total_count >= 1


def test_dashscope_calls_over_https(https_server, https_api_key, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(https_server.ca_file))
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{https_server.base_url()}/api/v1")
    response = dashscope.Generation.call(
        model=DEMO_CHAT_MODEL, api_key=https_api_key, result_format="message",
        messages=[{"role": "user", "content": "over https"}],
    )
    assert response.status_code == 200, (response.code, response.message)
    assert response.output.choices[0].message.content == DEMO_REPLY_PREFIX + "over https"


def test_openai_calls_over_https(https_server, https_api_key):
    with openai.DefaultHttpxClient(verify=https_server.client_ssl_context()) as http_client:
        client = openai.OpenAI(
            base_url=f"{https_server.base_url()}/compatible-mode/v1", api_key=https_api_key,
            http_client=http_client, max_retries=0, timeout=30,
        )
        completion = client.chat.completions.create(
            model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "over https"}],
        )
        assert completion.choices[0].message.content == DEMO_REPLY_PREFIX + "over https"
        streamed = client.chat.completions.create(
            model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "streamed"}], stream=True,
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
        assert text == DEMO_REPLY_PREFIX + "streamed"


def test_anthropic_calls_over_https(https_server, https_api_key):
    with anthropic.DefaultHttpxClient(verify=https_server.client_ssl_context()) as http_client:
        client = anthropic.Anthropic(
            base_url=f"{https_server.base_url()}/apps/anthropic", api_key=https_api_key,
            http_client=http_client, max_retries=0, timeout=30,
        )
        message = client.messages.create(
            model=DEMO_CHAT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "over https"}],
        )
        assert message.content[0].text == DEMO_REPLY_PREFIX + "over https"


def test_a_client_that_does_not_trust_the_ca_is_refused_by_its_own_tls(https_server, https_api_key):
    with openai.DefaultHttpxClient() as http_client:
        client = openai.OpenAI(
            base_url=f"{https_server.base_url()}/compatible-mode/v1", api_key=https_api_key,
            http_client=http_client, max_retries=0, timeout=10,
        )
        with pytest.raises(openai.APIConnectionError):
            client.models.list()


def test_plain_http_to_the_https_port_gets_no_answer(https_server):
    connection = http.client.HTTPConnection("127.0.0.1", https_server.port_by_region[PRIMARY_REGION], timeout=15)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            connection.request("GET", "/healthz")
            connection.getresponse()
    finally:
        connection.close()
    # The listener serves on.
    status, _headers, _body = http_exchange(
        "GET", https_server.base_url() + "/healthz", ssl_context=https_server.client_ssl_context())
    assert status == 200


def test_console_cookies_are_secure_over_https(https_server):
    status, headers, _body = http_exchange(
        "GET", https_server.base_url() + "/console/login", ssl_context=https_server.client_ssl_context())
    assert status == 200
    login_cookie = next(value for value in headers.get_all("set-cookie") if value.startswith("keygate_login="))
    assert login_cookie.endswith("; Secure"), login_cookie


def served_certificate(https_server) -> bytes:
    """The certificate a new connection to the listener is served (DER)."""
    context = https_server.client_ssl_context()
    with socket.create_connection(("127.0.0.1", https_server.port_by_region[PRIMARY_REGION]), timeout=15) as tcp:
        with context.wrap_socket(tcp, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_serves_a_new_certificate_to_new_connections(https_server, certificate_authority, https_api_key):
    served_certificate_file, served_key_file = https_server.tls_files
    assert served_certificate(https_server) == certificate_der(served_certificate_file)
    # A kept-alive connection made before the reload.
    with httpx.Client(verify=https_server.client_ssl_context()) as before_reload:
        assert before_reload.get(https_server.base_url() + "/healthz").status_code == 200

        new_certificate_file, new_key_file = certificate_authority.issue("second")
        shutil.copy(new_key_file, served_key_file)
        shutil.copy(new_certificate_file, served_certificate_file)
        https_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
        while served_certificate(https_server) != certificate_der(new_certificate_file):
            assert time.monotonic() < deadline, "the new certificate was not served\n" + https_server.serve_log_tail()
            time.sleep(0.1)
        assert "TLS certificate reloaded" in https_server.serve_log_text()
        assert https_server.process.poll() is None, "keygate kept running"

        # The connection made before goes on, and SDK calls work with the new certificate.
        assert before_reload.get(https_server.base_url() + "/healthz").status_code == 200
    with openai.DefaultHttpxClient(verify=https_server.client_ssl_context()) as http_client:
        client = openai.OpenAI(
            base_url=f"{https_server.base_url()}/compatible-mode/v1", api_key=https_api_key,
            http_client=http_client, max_retries=0, timeout=30,
        )
        completion = client.chat.completions.create(
            model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "after reload"}],
        )
        assert completion.choices[0].message.content == DEMO_REPLY_PREFIX + "after reload"


def test_a_reload_of_broken_files_keeps_the_certificate_in_force(https_server):
    served_certificate_file, _served_key_file = https_server.tls_files
    in_force = served_certificate(https_server)
    kept = served_certificate_file.read_bytes()
    served_certificate_file.write_text("not a certificate\n", encoding="ascii")
    try:
        log_length = len(https_server.serve_log_text())
        https_server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
        while "TLS certificate not reloaded" not in https_server.serve_log_text()[log_length:]:
            assert time.monotonic() < deadline, "no word of the failed reload\n" + https_server.serve_log_tail()
            time.sleep(0.1)
        assert served_certificate(https_server) == in_force
        assert https_server.process.poll() is None
    finally:
        served_certificate_file.write_bytes(kept)


def test_the_https_servers_log_holds_no_key(https_server, https_api_key):
    # Like the suite's server (test_canary_secrets.py): TLS changes nothing in what is logged.
    assert https_api_key not in https_server.serve_log_text()
