"""Canary check (docs/CONTRACT.md#secrets): no plaintext API key and no AccessKey secret that the suite saw
may appear in the server's log (run with RUST_LOG=debug), in the admin commands' stderr,
or in the bytes of any file of the data dir (keygate.db, keygate.db-wal, ...).

conftest.py runs this file after every other test file, so that the scan covers every
secret the whole session produced; its first test also makes fresh canaries of its own
(a key used on the gateway, a reset, an AccessKey made with RUST_LOG=debug and used to
sign), so that the file is meaningful when run alone too.
"""

from __future__ import annotations

import json
import uuid

from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    PRIMARY_REGION,
    assert_successful_envelope,
    create_api_key,
    send_raw_request,
)


def test_canary_secrets_are_exercised_on_every_path(keygate_server, root_client, default_workspace_id):
    canary = create_api_key(keygate_server, root_client, default_workspace_id, "canary " + uuid.uuid4().hex)

    # Present the canary on the gateway: this is where a debug log would print headers.
    send_raw_request(
        "POST",
        keygate_server.base_url(PRIMARY_REGION) + "/compatible-mode/v1/chat/completions",
        headers={"authorization": f"Bearer {canary.api_key_value}", "content-type": "application/json"},
        body=json.dumps({"model": "demo-echo", "messages": [{"role": "user", "content": "canary"}]}).encode(),
    )

    reset = root_client.reset_api_key(str(canary.api_key_id), modelstudio_models.ResetApiKeyRequest())
    assert_successful_envelope(reset)
    keygate_server.remember_secret(reset.body.api_key.api_key_value)

    # An AccessKey made with debug logging on, then used to sign a request.
    access_key = keygate_server.create_access_key(rust_log="debug")
    admin_log = keygate_server.admin_log_path.read_bytes()
    assert access_key.access_key_secret.encode() not in admin_log, "create-access-key printed its secret on stderr"
    signed_with_new_key = keygate_server.signed_client(PRIMARY_REGION, access_key)
    assert_successful_envelope(signed_with_new_key.list_api_keys(modelstudio_models.ListApiKeysRequest(max_results=1)))


def test_no_seen_secret_in_server_log_or_data_dir_files(keygate_server):
    data_dir = keygate_server.data_dir
    assert (data_dir / "keygate.db").is_file(), sorted(path.name for path in data_dir.iterdir())
    assert keygate_server.serve_log_path.is_file()
    seen_secrets = sorted(set(keygate_server.seen_secrets))
    assert len(seen_secrets) >= 3, "the canary scan would be vacuous"

    findings = []
    scanned_files = sorted(path for path in data_dir.rglob("*") if path.is_file())
    for path in scanned_files:
        content = path.read_bytes()
        for secret_value in seen_secrets:
            if secret_value.encode() in content:
                # Print only a masked form of the secret.
                findings.append(f"{path.name}: {secret_value[:6]}...{secret_value[-2:]}")
    assert not findings, "plaintext secrets written to disk:\n" + "\n".join(findings)
    scanned_names = {path.name for path in scanned_files}
    assert {"keygate.db", keygate_server.serve_log_path.name} <= scanned_names
