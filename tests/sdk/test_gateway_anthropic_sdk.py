"""The official `anthropic` Python SDK (2.14.0), pointed at keygate's Anthropic-compatible
path (`/apps/anthropic`, as Claude Code uses it) by changing only `base_url` and the
credential, sent both ways Claude Code sends it: `api_key=` (x-api-key, ANTHROPIC_API_KEY)
and `auth_token=` (Authorization: Bearer, ANTHROPIC_AUTH_TOKEN) (docs/CONTRACT.md#data-plane):

- messages.create and client.messages.stream(...), answered by the demo upstream and by the
  upstream test double, which must receive keygate's upstream credential as x-api-key (and
  no Authorization header) and never the client's key;
- the SDK's own exceptions with keygate's Anthropic-shaped error body and `request-id`
  header: AuthenticationError (401, bad key), PermissionDeniedError (403, model out of the
  key's scope), NotFoundError (404, unknown model), BadRequestError (400, a model served only
  through another protocol), InternalServerError (502 api_error, upstream unreachable);
- models.list and models.retrieve, answered by keygate from its catalog and scoped to the
  key; messages.count_tokens, counted by the demo or forwarded to the double, and refused
  for a model out of the key's scope.
"""

from __future__ import annotations

import secrets
import uuid

import anthropic
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DOUBLE_CHAT_MODEL,
    DOUBLE_OPENAI_ONLY_MODEL,
    PRIMARY_REGION,
    UNREACHABLE_UPSTREAM_MODEL,
    create_api_key,
    delete_api_key_quietly,
)
from upstream_double import COUNT_TOKENS_OFFSET, assert_forwarded_with_upstream_credential_only, reply_text_for

DEMO_REPLY_PREFIX = "[keygate demo] echo: "
MAX_TOKENS = 64
CREDENTIAL_STYLES = ["api_key", "auth_token"]


def expected_reply(model_name: str, heard: str) -> str:
    if model_name == DOUBLE_CHAT_MODEL:
        return reply_text_for(heard)
    return DEMO_REPLY_PREFIX + heard


def unique_marker(label: str) -> str:
    return f"{label} marker {uuid.uuid4().hex[:12]} one two three four five"


@pytest.fixture(scope="module")
def make_anthropic_client(keygate_server):
    """Anthropic(base_url=<keygate>/apps/anthropic, api_key=key) or (..., auth_token=key),
    with retries off so that refusals answer at once."""
    base_url = f"{keygate_server.base_url(PRIMARY_REGION)}/apps/anthropic"

    def make(key: str, credential_style: str = "api_key") -> anthropic.Anthropic:
        assert credential_style in CREDENTIAL_STYLES
        return anthropic.Anthropic(base_url=base_url, max_retries=0, timeout=30, **{credential_style: key})
    return make


@pytest.fixture(scope="module")
def api_key_scoped_to_double_chat_only(keygate_server, root_client, default_workspace_id) -> str:
    """A Custom key (any address) whose model scope is `double-chat` alone."""
    auth = modelstudio_models.CreateApiKeyRequestAuth(
        type="Custom",
        model_access_scope=modelstudio_models.CreateApiKeyRequestAuthModelAccessScope(
            allow_all_models=False, accessible_models=[DOUBLE_CHAT_MODEL],
        ),
    )
    created = create_api_key(keygate_server, root_client, default_workspace_id, "gateway tests: double-chat only", auth)
    yield created.api_key_value
    delete_api_key_quietly(root_client, created.api_key_id)


def assert_anthropic_error(error: anthropic.APIStatusError, expected_status: int, expected_type: str) -> None:
    assert error.status_code == expected_status, (error.status_code, error.message)
    body = error.response.json()
    assert body["type"] == "error", body
    assert body["error"]["type"] == expected_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert error.response.headers.get("request-id"), dict(error.response.headers)
    assert error.request_id == error.response.headers.get("request-id")


def create_message(client: anthropic.Anthropic, model_name: str, text: str):
    return client.messages.create(model=model_name, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": text}])


# ---- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("credential_style", CREDENTIAL_STYLES)
@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_messages_create_returns_the_reply(
        model_name, credential_style, make_anthropic_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("messages")
    message = create_message(make_anthropic_client(api_key_with_all_permissions, credential_style), model_name, marker)
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == model_name
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected_reply(model_name, marker)
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    forwarded = upstream_double.records_mentioning(marker)
    if model_name == DEMO_CHAT_MODEL:
        assert forwarded == [], "a demo model's call reached the upstream double"
    else:
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "anthropic")
        assert forwarded[0].path == "/anthropic/v1/messages"
        assert forwarded[0].headers.get("anthropic-version"), "the SDK's anthropic-version header was not forwarded"


@pytest.mark.parametrize("credential_style", CREDENTIAL_STYLES)
@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_messages_stream_text_reassembles_into_the_final_message(
        model_name, credential_style, make_anthropic_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("messages stream")
    client = make_anthropic_client(api_key_with_all_permissions, credential_style)
    with client.messages.stream(model=model_name, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": marker}]) as stream:
        pieces = list(stream.text_stream)
        final_message = stream.get_final_message()
    assert len(pieces) >= 2, pieces
    assert "".join(pieces) == expected_reply(model_name, marker)
    assert final_message.content[0].text == expected_reply(model_name, marker)
    assert final_message.stop_reason == "end_turn"
    assert final_message.model == model_name
    if model_name == DOUBLE_CHAT_MODEL:
        forwarded = upstream_double.records_mentioning(marker)
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "anthropic")
        assert forwarded[0].json_body()["stream"] is True


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("credential_style", CREDENTIAL_STYLES)
def test_bad_key_raises_authentication_error(credential_style, make_anthropic_client, upstream_double):
    marker = unique_marker("bad key")
    client = make_anthropic_client("sk-ws-" + secrets.token_hex(19), credential_style)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        create_message(client, DOUBLE_CHAT_MODEL, marker)
    assert_anthropic_error(raised.value, 401, "authentication_error")
    assert upstream_double.records_mentioning(marker) == []


@pytest.mark.parametrize("credential_style", CREDENTIAL_STYLES)
def test_model_out_of_the_key_scope_raises_permission_denied_error(
        credential_style, make_anthropic_client, api_key_scoped_to_double_chat_only):
    client = make_anthropic_client(api_key_scoped_to_double_chat_only, credential_style)
    assert create_message(client, DOUBLE_CHAT_MODEL, "in scope").content[0].text
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        create_message(client, DEMO_CHAT_MODEL, "out of scope")
    assert_anthropic_error(raised.value, 403, "permission_error")
    with pytest.raises(anthropic.PermissionDeniedError):
        with client.messages.stream(model=DEMO_CHAT_MODEL, max_tokens=MAX_TOKENS,
                                    messages=[{"role": "user", "content": "out of scope, streaming"}]) as stream:
            list(stream.text_stream)


def test_unknown_model_raises_not_found_error(make_anthropic_client, api_key_with_all_permissions):
    with pytest.raises(anthropic.NotFoundError) as raised:
        create_message(make_anthropic_client(api_key_with_all_permissions), "no-such-model-" + uuid.uuid4().hex[:8], "hello")
    assert_anthropic_error(raised.value, 404, "not_found_error")


def test_model_served_only_in_openai_protocol_raises_bad_request_error(make_anthropic_client, api_key_with_all_permissions):
    with pytest.raises(anthropic.BadRequestError) as raised:
        create_message(make_anthropic_client(api_key_with_all_permissions), DOUBLE_OPENAI_ONLY_MODEL, "hello")
    assert_anthropic_error(raised.value, 400, "invalid_request_error")
    assert "OpenAI-compatible" in raised.value.response.json()["error"]["message"]


def test_unreachable_upstream_raises_internal_server_error_with_status_502(make_anthropic_client, api_key_with_all_permissions):
    with pytest.raises(anthropic.InternalServerError) as raised:
        create_message(make_anthropic_client(api_key_with_all_permissions), UNREACHABLE_UPSTREAM_MODEL, "anyone there?")
    assert_anthropic_error(raised.value, 502, "api_error")


# ---- models and token counts -----------------------------------------------------------------


def test_models_list_names_only_what_the_key_may_call_in_this_protocol(
        make_anthropic_client, api_key_with_all_permissions, api_key_scoped_to_double_chat_only):
    listed = [model.id for model in make_anthropic_client(api_key_with_all_permissions).models.list()]
    assert {DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL} <= set(listed), listed
    assert DOUBLE_OPENAI_ONLY_MODEL not in listed
    scoped = make_anthropic_client(api_key_scoped_to_double_chat_only)
    assert [model.id for model in scoped.models.list()] == [DOUBLE_CHAT_MODEL]
    retrieved = scoped.models.retrieve(DOUBLE_CHAT_MODEL)
    assert (retrieved.id, retrieved.type) == (DOUBLE_CHAT_MODEL, "model")
    with pytest.raises(anthropic.NotFoundError) as raised:
        scoped.models.retrieve(DEMO_CHAT_MODEL)
    assert_anthropic_error(raised.value, 404, "not_found_error")


@pytest.mark.parametrize("credential_style", CREDENTIAL_STYLES)
def test_count_tokens_is_answered_by_the_demo_and_by_the_upstream(
        credential_style, make_anthropic_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    client = make_anthropic_client(api_key_with_all_permissions, credential_style)
    messages = [{"role": "user", "content": unique_marker("count")}]
    demo = client.messages.count_tokens(model=DEMO_CHAT_MODEL, messages=messages)
    called = client.messages.create(model=DEMO_CHAT_MODEL, max_tokens=MAX_TOKENS, messages=messages)
    assert demo.input_tokens == called.usage.input_tokens > 0
    forwarded = client.messages.count_tokens(model=DOUBLE_CHAT_MODEL, messages=messages)
    assert forwarded.input_tokens == COUNT_TOKENS_OFFSET + len(messages[0]["content"].split())
    assert_forwarded_with_upstream_credential_only(
        upstream_double.records_mentioning(messages[0]["content"].split()[2]), upstream_secret, api_key_with_all_permissions, "anthropic")


def test_count_tokens_for_a_model_out_of_scope_is_refused(make_anthropic_client, api_key_scoped_to_double_chat_only):
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        make_anthropic_client(api_key_scoped_to_double_chat_only).messages.count_tokens(
            model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "hello"}])
    assert_anthropic_error(raised.value, 403, "permission_error")
    assert raised.value.response.headers.get("x-should-retry") == "false"
