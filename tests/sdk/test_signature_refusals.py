"""ACS3-HMAC-SHA256 refusals, sent by the real SDK: a wrong secret, an unknown AccessKey
id, a stale or future `x-acs-date`, a replayed `x-acs-signature-nonce`, and no credential
at all. Each refusal must be a ClientException whose body is the JSON error envelope.

How the stale date and the replayed nonce are produced (investigated in the installed
source of alibabacloud-modelstudio20260210 2.2.3 / alibabacloud_tea_openapi 0.4.6):
every operation goes `Client.<operation>_with_options` -> `OpenApiClient.call_api` ->
`OpenApiClient.do_request` (alibabacloud_tea_openapi/client.py; `call_api` takes that path
because Config.signature_algorithm is unset). `do_request` builds the request headers with

    'x-acs-date': Utils.get_timestamp(),
    'x-acs-signature-nonce': Utils.get_nonce(),

where `Utils` is the class `alibabacloud_tea_openapi.utils.Utils` (static methods), and only
afterwards calls `Utils.get_authorization(...)`, which signs over those very headers. So
patching `alibabacloud_tea_openapi.utils.Utils.get_timestamp` and
`alibabacloud_tea_openapi.utils.Utils.get_nonce` (class attributes, seen by every module
that imported the class) makes the SDK send, and correctly sign, the date and nonce we
choose. The older `alibabacloud_tea_util.client.Client.get_nonce` is not on this path.
The patches are undone by pytest's monkeypatch after each test.
"""

from __future__ import annotations

import inspect
import json
import secrets
import string
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils

from keygate_harness import (
    PRIMARY_REGION,
    AccessKey,
    assert_client_exception,
    assert_error_envelope,
    assert_successful_envelope,
    send_raw_request_with_headers,
)

ACS_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def acs_date(offset: timedelta) -> str:
    return (datetime.now(timezone.utc) + offset).strftime(ACS_DATE_FORMAT)


def make_sdk_send_this_date(monkeypatch, date_text: str) -> list[str]:
    """Replaces Utils.get_timestamp (source of `x-acs-date`); returns the list of values
    handed out, so a test can prove the SDK really called the patched function."""
    handed_out: list[str] = []

    def fixed_timestamp() -> str:
        handed_out.append(date_text)
        return date_text

    monkeypatch.setattr(OpenApiUtils, "get_timestamp", staticmethod(fixed_timestamp))
    return handed_out


def make_sdk_send_this_nonce(monkeypatch, nonce: str) -> list[str]:
    """Replaces Utils.get_nonce (source of `x-acs-signature-nonce`)."""
    handed_out: list[str] = []

    def fixed_nonce() -> str:
        handed_out.append(nonce)
        return nonce

    monkeypatch.setattr(OpenApiUtils, "get_nonce", staticmethod(fixed_nonce))
    return handed_out


def list_one_api_key(client):
    return client.list_api_keys(modelstudio_models.ListApiKeysRequest(max_results=1))


def random_access_key_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "LTAI" + "".join(secrets.choice(alphabet) for _ in range(20))


def random_access_key_secret() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(30))


def test_sdk_takes_date_and_nonce_from_the_patched_functions():
    """Guards the monkeypatch approach against an SDK upgrade that moves these headers."""
    do_request_source = inspect.getsource(OpenApiClient.do_request)
    assert "'x-acs-date': Utils.get_timestamp()" in do_request_source
    assert "'x-acs-signature-nonce': Utils.get_nonce()" in do_request_source
    assert inspect.getmodule(OpenApiClient.do_request).Utils is OpenApiUtils


def test_wrong_secret_answers_signature_does_not_match(keygate_server, root_access_key, root_client):
    client = keygate_server.signed_client(
        PRIMARY_REGION, AccessKey(root_access_key.access_key_id, random_access_key_secret())
    )
    description = "wrong secret " + uuid.uuid4().hex
    with pytest.raises(ClientException) as raised:
        client.create_api_key(modelstudio_models.CreateApiKeyRequest(description=description))
    assert_client_exception(raised.value, 400, "SignatureDoesNotMatch")
    listed = root_client.list_api_keys(modelstudio_models.ListApiKeysRequest(description=description))
    assert listed.body.api_keys == [], "a refused request created nothing"


def test_unknown_access_key_id_answers_invalid_access_key_id_not_found(keygate_server):
    client = keygate_server.signed_client(PRIMARY_REGION, AccessKey(random_access_key_id(), random_access_key_secret()))
    with pytest.raises(ClientException) as raised:
        list_one_api_key(client)
    assert_client_exception(raised.value, 404, "InvalidAccessKeyId.NotFound")


def test_date_five_minutes_old_is_still_accepted(monkeypatch, root_client):
    """Control: a patched date inside the 15-minute window is signed and accepted, so the
    refusals below are about the date, not about a broken signature."""
    handed_out = make_sdk_send_this_date(monkeypatch, acs_date(timedelta(minutes=-5)))
    assert_successful_envelope(list_one_api_key(root_client))
    assert handed_out, "the SDK did not call the patched Utils.get_timestamp"


def test_stale_date_answers_invalid_timestamp_expired(monkeypatch, root_client):
    handed_out = make_sdk_send_this_date(monkeypatch, acs_date(timedelta(minutes=-20)))
    with pytest.raises(ClientException) as raised:
        list_one_api_key(root_client)
    assert handed_out, "the SDK did not call the patched Utils.get_timestamp"
    assert_client_exception(raised.value, 400, "InvalidTimeStamp.Expired")


def test_date_far_in_the_future_is_refused(monkeypatch, root_client):
    make_sdk_send_this_date(monkeypatch, acs_date(timedelta(minutes=20)))
    with pytest.raises(ClientException) as raised:
        list_one_api_key(root_client)
    assert_client_exception(raised.value, 400)
    assert raised.value.code.startswith("InvalidTimeStamp"), raised.value.data


def test_replayed_nonce_answers_signature_nonce_used(monkeypatch, root_client):
    handed_out = make_sdk_send_this_nonce(monkeypatch, uuid.uuid4().hex)
    assert_successful_envelope(list_one_api_key(root_client))
    with pytest.raises(ClientException) as raised:
        list_one_api_key(root_client)
    assert len(handed_out) == 2, "the SDK did not call the patched Utils.get_nonce for each request"
    assert_client_exception(raised.value, 400, "SignatureNonceUsed")


def test_request_without_any_credential_is_refused_with_json_envelope(keygate_server):
    status, headers, body = send_raw_request_with_headers(
        "GET",
        keygate_server.base_url(PRIMARY_REGION) + "/modelstudio/apikeys",
        headers={"x-acs-action": "ListApiKeys", "x-acs-version": "2026-02-10", "accept": "application/json"},
    )
    assert 400 <= status < 500, (status, body)
    assert_error_envelope(json.loads(body))
