"""Fixtures of the SDK compatibility suite: one real `keygate serve` for the whole session
(listeners for ap-southeast-1 and us-east-1, and a plan listener), its RAM users and
AccessKeys made with the `keygate admin` database commands, and official-SDK clients signed
with them.

The server is started with a config file (keygate_harness.write_gateway_test_config) that
routes the `double-*` models to the upstream test double (upstream_double.py), which is
started first, and with the double's credential in `KEYGATE_TEST_UPSTREAM_KEY`.

Bootstrap order, on purpose: the root AccessKey and the key-manager `alice` are created
BEFORE `serve` starts; the `member` user `bob` and its AccessKey are created WHILE it runs
(SQLite WAL: both must work).

The binary is `$KEYGATE_BIN`, else `<target dir>/debug/keygate` (tests/sdk/run.sh builds it).
The shared harness's pytest plugin (tests/python_harness/keygate_pytest.py) runs the canary
test file (pytest.ini: canary_test_file) last, so that it sees every secret the other files
produced, and attaches the server log to failing tests' reports.
"""

from __future__ import annotations

import secrets
import socket

import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    CLASSIC_REGION,
    DEMO_CHAT_MODEL,
    DOUBLE_CHAT_MODEL,
    PRIMARY_REGION,
    UPSTREAM_CREDENTIAL_VARIABLE,
    AccessKey,
    KeygateServer,
    assert_successful_envelope,
    create_api_key,
    delete_api_key_quietly,
    write_gateway_test_config,
)
from upstream_double import UpstreamDouble

pytest_plugins = ["keygate_pytest"]


# ---- the server ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream_secret() -> str:
    """The credential keygate sends to the upstream double (never the client's key)."""
    return "upstream-secret-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def upstream_double(upstream_secret) -> UpstreamDouble:
    """The upstream provider test double, started before keygate (whose config points at it);
    it answers 401 to any request without `upstream_secret`."""
    double = UpstreamDouble(expected_credential=upstream_secret)
    double.start()
    yield double
    double.stop()


@pytest.fixture(scope="session")
def port_that_refuses_connections() -> int:
    """A local port held by a bound socket that never listens: nothing else can take it, and
    a connection to it is refused at once (the "upstream unreachable" case)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held_socket:
        held_socket.bind(("127.0.0.1", 0))
        yield held_socket.getsockname()[1]


@pytest.fixture(scope="session")
def keygate_server(keygate_binary, tmp_path_factory, upstream_double, upstream_secret, port_that_refuses_connections) -> KeygateServer:
    data_dir = tmp_path_factory.mktemp("keygate-data")
    # Outside the data dir: the canary scan covers the data dir, and this file holds no secret.
    config_path = write_gateway_test_config(
        tmp_path_factory.mktemp("keygate-config") / "keygate.toml", upstream_double.base_url,
        f"http://127.0.0.1:{port_that_refuses_connections}",
    )
    server = KeygateServer(keygate_binary, data_dir, config_path, {UPSTREAM_CREDENTIAL_VARIABLE: upstream_secret})
    # keygate must not log or store the upstream's credential either.
    server.remember_secret(upstream_secret)
    # Before `serve`: the database commands must work on a data dir no server has opened.
    server.access_key_by_owner["root"] = server.create_access_key()
    server.create_user("alice", "key-manager")
    server.access_key_by_owner["alice"] = server.create_access_key("alice")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def root_access_key(keygate_server) -> AccessKey:
    return keygate_server.access_key_by_owner["root"]


@pytest.fixture(scope="session")
def alice_access_key(keygate_server) -> AccessKey:
    return keygate_server.access_key_by_owner["alice"]


@pytest.fixture(scope="session")
def member_access_key(keygate_server) -> AccessKey:
    """`bob`, role member, created while the server runs."""
    keygate_server.create_user("bob", "member")
    return keygate_server.create_access_key("bob")


# ---- SDK clients -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def root_client(keygate_server, root_access_key):
    return keygate_server.signed_client(PRIMARY_REGION, root_access_key)


@pytest.fixture(scope="session")
def root_client_in_classic_region(keygate_server, root_access_key):
    return keygate_server.signed_client(CLASSIC_REGION, root_access_key)


@pytest.fixture(scope="session")
def alice_client(keygate_server, alice_access_key):
    return keygate_server.signed_client(PRIMARY_REGION, alice_access_key)


@pytest.fixture(scope="session")
def member_client(keygate_server, member_access_key):
    return keygate_server.signed_client(PRIMARY_REGION, member_access_key)


# ---- workspaces and keys ---------------------------------------------------------------


@pytest.fixture(scope="session")
def default_workspace_id_by_region(root_client, root_client_in_classic_region) -> dict[str, str]:
    """The root account's default workspace in each region. Evaluated before any test
    creates a sub-workspace (those tests depend on it), so each region lists exactly one."""
    workspace_id_by_region = {}
    for region, client in ((PRIMARY_REGION, root_client), (CLASSIC_REGION, root_client_in_classic_region)):
        response = client.list_workspaces(modelstudio_models.ListWorkspacesRequest())
        assert_successful_envelope(response)
        workspaces = response.body.workspaces
        assert len(workspaces) == 1, [workspace.to_map() for workspace in workspaces]
        workspace_id_by_region[region] = workspaces[0].workspace_id
    return workspace_id_by_region


@pytest.fixture(scope="session")
def default_workspace_id(default_workspace_id_by_region) -> str:
    return default_workspace_id_by_region[PRIMARY_REGION]


@pytest.fixture
def api_keys_to_delete():
    """Tests append (client, apiKeyId); the keys are deleted afterwards so that the
    session's key count stays far below the region limits."""
    pending: list = []
    yield pending
    for client, api_key_id in pending:
        delete_api_key_quietly(client, api_key_id)


# ---- API keys for model calls (the gateway) ---------------------------------------------


@pytest.fixture(scope="session")
def api_key_with_all_permissions(keygate_server, root_client, default_workspace_id) -> str:
    """The plaintext of a root key in the default workspace, permission `All`."""
    created = create_api_key(keygate_server, root_client, default_workspace_id, "gateway tests: All")
    yield created.api_key_value
    delete_api_key_quietly(root_client, created.api_key_id)


@pytest.fixture(scope="session")
def api_key_scoped_to_demo_echo_and_double_chat(keygate_server, root_client, default_workspace_id) -> str:
    """The plaintext of a `Custom` key (any address) whose model scope is only `demo-echo`
    and `double-chat`: `demo-embed` and `double-embed` are out of its scope."""
    auth = modelstudio_models.CreateApiKeyRequestAuth(
        type="Custom",
        model_access_scope=modelstudio_models.CreateApiKeyRequestAuthModelAccessScope(
            allow_all_models=False, accessible_models=[DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL],
        ),
    )
    created = create_api_key(keygate_server, root_client, default_workspace_id, "gateway tests: scoped", auth)
    yield created.api_key_value
    delete_api_key_quietly(root_client, created.api_key_id)


@pytest.fixture(scope="session")
def root_session_token(keygate_server) -> str:
    """A session of the account itself (x-acs-bearer-token), for keygate's own API."""
    token = keygate_server.log_in("root", keygate_server.root_password)
    keygate_server.remember_secret(token)
    return token
