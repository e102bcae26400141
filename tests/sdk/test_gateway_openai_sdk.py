"""The official `openai` Python SDK (3.57.0), pointed at keygate's OpenAI-compatible paths by
changing only `base_url` and `api_key` (docs/CONTRACT.md#data-plane):

- chat completions, streamed chat (chunks reassembled) and embeddings, answered by the demo
  upstream and by the upstream test double, which must receive keygate's upstream credential
  and never the client's key; a stream from the double passes through without buffering;
- `models.list()` lists only the models the key may call (and that are served in this
  protocol);
- the SDK's own exceptions: AuthenticationError (401, bad or expired key),
  PermissionDeniedError (403, model out of the key's scope), NotFoundError (404, unknown
  model), BadRequestError (400, a body over the 10 MiB limit, refused before anything is
  forwarded), InternalServerError (502, upstream unreachable), each with keygate's
  OpenAI-shaped error body;
- temporary keys minted on the DashScope wire (`POST /api/v1/tokens?expire_in_seconds=60`)
  used as the SDK's api_key: they work, keep their parent's scope, cannot mint another, and
  stop working when they expire.
"""

from __future__ import annotations

import secrets
import time
import uuid

import openai
import pytest

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    DOUBLE_CHAT_MODEL,
    DOUBLE_EMBEDDING_MODEL,
    DOUBLE_OPENAI_ONLY_MODEL,
    PRIMARY_REGION,
    UNREACHABLE_UPSTREAM_MODEL,
    mint_temporary_api_key,
    send_raw_request,
)
from upstream_double import assert_forwarded_with_upstream_credential_only, reply_text_for

DEMO_REPLY_PREFIX = "[keygate demo] echo: "
DEMO_EMBEDDING_DIMENSIONS = 8
# Models of the built-in catalog that no upstream serves in the suite's config: callable by
# the default workspace's All key in principle, but not served, so not listed.
CATALOG_MODEL_WITHOUT_AN_UPSTREAM = "qwen-plus"
MODELS_SERVED_IN_OPENAI_PROTOCOL = {
    DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL, DOUBLE_CHAT_MODEL, DOUBLE_EMBEDDING_MODEL, DOUBLE_OPENAI_ONLY_MODEL,
    UNREACHABLE_UPSTREAM_MODEL,
}
# keygate's default body limit is 10 MiB.
BODY_LARGER_THAN_THE_LIMIT_BYTES = 10 * 1024 * 1024 + 1024


def expected_reply(model_name: str, heard: str) -> str:
    if model_name in (DOUBLE_CHAT_MODEL, DOUBLE_OPENAI_ONLY_MODEL):
        return reply_text_for(heard)
    return DEMO_REPLY_PREFIX + heard


def unique_marker(label: str) -> str:
    return f"{label} marker {uuid.uuid4().hex[:12]} one two three four five"


@pytest.fixture(scope="module")
def openai_base_url(keygate_server) -> str:
    return f"{keygate_server.base_url(PRIMARY_REGION)}/compatible-mode/v1"


@pytest.fixture(scope="module")
def make_openai_client(openai_base_url):
    """OpenAI(base_url=..., api_key=...) with retries off, so that refusals answer at once."""
    def make(api_key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=openai_base_url, api_key=api_key, max_retries=0, timeout=30)
    return make


def assert_openai_error_body(error: openai.APIStatusError, expected_status: int, expected_code: str) -> None:
    assert error.status_code == expected_status, (error.status_code, error.message)
    body = error.response.json()
    assert body["error"]["code"] == expected_code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert isinstance(body.get("request_id"), str) and body["request_id"], body
    assert error.code == expected_code, error.code


def chat(client: openai.OpenAI, model_name: str, text: str, **options):
    return client.chat.completions.create(model=model_name, messages=[{"role": "user", "content": text}], **options)


# ---- chat completions ---------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL, DOUBLE_OPENAI_ONLY_MODEL])
def test_chat_completion_returns_the_reply(model_name, make_openai_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("chat")
    completion = chat(make_openai_client(api_key_with_all_permissions), model_name, marker)
    assert completion.object == "chat.completion"
    assert completion.model == model_name
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == expected_reply(model_name, marker)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    forwarded = upstream_double.records_mentioning(marker)
    if model_name == DEMO_CHAT_MODEL:
        assert forwarded == [], "a demo model's call reached the upstream double"
    else:
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "openai")
        assert forwarded[0].path == "/openai/v1/chat/completions"
        assert forwarded[0].json_body()["model"] == model_name


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_streamed_chat_completion_chunks_reassemble_into_the_reply(
        model_name, make_openai_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("chat stream")
    stream = chat(make_openai_client(api_key_with_all_permissions), model_name, marker, stream=True)
    pieces = []
    finish_reasons = []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert len(pieces) >= 2, pieces
    assert "".join(pieces) == expected_reply(model_name, marker)
    assert finish_reasons == ["stop"]
    if model_name == DOUBLE_CHAT_MODEL:
        forwarded = upstream_double.records_mentioning(marker)
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "openai")
        assert forwarded[0].json_body()["stream"] is True


def test_streamed_chat_from_the_double_passes_through_without_buffering(make_openai_client, api_key_with_all_permissions):
    """The double pauses 1.5 s before its last event (`data: [DONE]`, which the SDK does not
    yield but waits for): the first chunk must arrive well before the stream ends."""
    stream = chat(make_openai_client(api_key_with_all_permissions), DOUBLE_CHAT_MODEL, unique_marker("slow stream"),
                  stream=True, extra_headers={"X-Test-Slow-Stream": "1"})
    arrival_times = [time.monotonic() for _ in stream]
    stream_ended_at = time.monotonic()
    assert len(arrival_times) >= 2
    assert stream_ended_at - arrival_times[0] >= 1.0, "keygate buffered the stream instead of passing it through"


# ---- embeddings ----------------------------------------------------------------------------


def test_embeddings_from_the_demo_are_one_deterministic_vector_per_input(make_openai_client, api_key_with_all_permissions):
    client = make_openai_client(api_key_with_all_permissions)
    inputs = ["first " + uuid.uuid4().hex, "second " + uuid.uuid4().hex]
    answer = client.embeddings.create(model=DEMO_EMBEDDING_MODEL, input=inputs)
    assert [item.index for item in answer.data] == [0, 1]
    assert all(len(item.embedding) == DEMO_EMBEDDING_DIMENSIONS for item in answer.data)
    assert answer.data[0].embedding != answer.data[1].embedding
    again = client.embeddings.create(model=DEMO_EMBEDDING_MODEL, input=inputs[0])
    assert again.data[0].embedding == answer.data[0].embedding


def test_embeddings_from_the_double_carry_the_upstream_credential_only(
        make_openai_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("embeddings")
    answer = make_openai_client(api_key_with_all_permissions).embeddings.create(model=DOUBLE_EMBEDDING_MODEL, input=[marker])
    assert len(answer.data) == 1 and answer.data[0].embedding
    forwarded = upstream_double.records_mentioning(marker)
    assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "openai")
    assert forwarded[0].path == "/openai/v1/embeddings"


# ---- models.list -------------------------------------------------------------------------


def test_models_list_for_an_all_key_lists_every_model_served_in_this_protocol(make_openai_client, api_key_with_all_permissions):
    listed = {model.id: model for model in make_openai_client(api_key_with_all_permissions).models.list()}
    assert set(listed) == MODELS_SERVED_IN_OPENAI_PROTOCOL, sorted(listed)
    assert CATALOG_MODEL_WITHOUT_AN_UPSTREAM not in listed
    assert all(model.object == "model" for model in listed.values())


def test_models_list_for_a_scoped_key_lists_only_its_models(make_openai_client, api_key_scoped_to_demo_echo_and_double_chat):
    listed = [model.id for model in make_openai_client(api_key_scoped_to_demo_echo_and_double_chat).models.list()]
    assert sorted(listed) == sorted([DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])


def test_models_retrieve_answers_a_model_the_key_may_call_and_404_otherwise(
        make_openai_client, api_key_scoped_to_demo_echo_and_double_chat):
    client = make_openai_client(api_key_scoped_to_demo_echo_and_double_chat)
    retrieved = client.models.retrieve(DEMO_CHAT_MODEL)
    assert (retrieved.id, retrieved.object) == (DEMO_CHAT_MODEL, "model")
    for hidden in (DEMO_EMBEDDING_MODEL, "no-such-model"):
        with pytest.raises(openai.NotFoundError) as raised:
            client.models.retrieve(hidden)
        assert raised.value.code == "model_not_found", raised.value.body
        assert raised.value.response.headers.get("x-should-retry") == "false"


# ---- images and speech --------------------------------------------------------------------


def test_images_generate_and_audio_speech_are_answered_by_the_demo(make_openai_client, api_key_with_all_permissions):
    client = make_openai_client(api_key_with_all_permissions)
    marker = unique_marker("image")
    images = client.images.generate(model=DEMO_CHAT_MODEL, prompt=marker, n=2)
    assert len(images.data) == 2
    assert images.data[0].url.startswith("data:image/svg+xml,") and images.data[0].revised_prompt.endswith(marker)
    speech = client.audio.speech.create(model=DEMO_CHAT_MODEL, voice="alloy", input="hello there")
    assert speech.content[:4] == b"RIFF" and speech.content[8:12] == b"WAVE"


def test_images_generate_is_scoped_like_any_call(make_openai_client, api_key_scoped_to_demo_echo_and_double_chat):
    with pytest.raises(openai.PermissionDeniedError) as raised:
        make_openai_client(api_key_scoped_to_demo_echo_and_double_chat).images.generate(model=DEMO_EMBEDDING_MODEL, prompt="a cat")
    assert raised.value.code == "model_access_denied"


# ---- refusals -------------------------------------------------------------------------------


def test_bad_key_raises_authentication_error(make_openai_client, upstream_double):
    marker = unique_marker("bad key")
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(make_openai_client("sk-ws-" + secrets.token_hex(19)), DOUBLE_CHAT_MODEL, marker)
    assert_openai_error_body(raised.value, 401, "invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        make_openai_client("not-a-keygate-key").models.list()
    assert upstream_double.records_mentioning(marker) == []


def test_model_out_of_the_key_scope_raises_permission_denied_error(
        make_openai_client, api_key_scoped_to_demo_echo_and_double_chat, upstream_double):
    client = make_openai_client(api_key_scoped_to_demo_echo_and_double_chat)
    assert chat(client, DOUBLE_CHAT_MODEL, "in scope").choices[0].message.content
    marker = unique_marker("out of scope")
    for model_name in (DEMO_EMBEDDING_MODEL, DOUBLE_EMBEDDING_MODEL):
        with pytest.raises(openai.PermissionDeniedError) as raised:
            client.embeddings.create(model=model_name, input=[marker])
        assert_openai_error_body(raised.value, 403, "model_access_denied")
        message = raised.value.response.json()["error"]["message"]
        assert f"custom permissions do not include the model '{model_name}'" in message, message
    with pytest.raises(openai.PermissionDeniedError):
        chat(client, DOUBLE_OPENAI_ONLY_MODEL, marker)
    assert upstream_double.records_mentioning(marker) == [], "a refused call reached the upstream"


def test_unknown_model_raises_not_found_error(make_openai_client, api_key_with_all_permissions):
    with pytest.raises(openai.NotFoundError) as raised:
        chat(make_openai_client(api_key_with_all_permissions), "no-such-model-" + uuid.uuid4().hex[:8], "hello")
    assert_openai_error_body(raised.value, 404, "model_not_found")


def test_body_over_the_limit_raises_bad_request_error_and_is_not_forwarded(
        make_openai_client, api_key_with_all_permissions, upstream_double):
    marker = unique_marker("oversized")
    oversized_text = marker + " " + "x" * BODY_LARGER_THAN_THE_LIMIT_BYTES
    with pytest.raises(openai.BadRequestError) as raised:
        chat(make_openai_client(api_key_with_all_permissions), DOUBLE_CHAT_MODEL, oversized_text)
    assert_openai_error_body(raised.value, 400, "invalid_request_error")
    assert upstream_double.records_mentioning(marker) == []


def test_unreachable_upstream_raises_internal_server_error_with_status_502(make_openai_client, api_key_with_all_permissions):
    with pytest.raises(openai.InternalServerError) as raised:
        chat(make_openai_client(api_key_with_all_permissions), UNREACHABLE_UPSTREAM_MODEL, "anyone there?")
    assert_openai_error_body(raised.value, 502, "upstream_error")


# ---- temporary keys (st-) ------------------------------------------------------------------


def test_temporary_key_minted_on_the_dashscope_wire_works_as_openai_api_key(
        keygate_server, make_openai_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    temporary_key = mint_temporary_api_key(keygate_server, api_key_with_all_permissions, expire_in_seconds=60)
    client = make_openai_client(temporary_key)

    marker = unique_marker("temporary key")
    assert chat(client, DEMO_CHAT_MODEL, marker).choices[0].message.content == DEMO_REPLY_PREFIX + marker
    streamed = "".join(
        choice.delta.content or ""
        for chunk in chat(client, DOUBLE_CHAT_MODEL, marker, stream=True)
        for choice in chunk.choices
    )
    assert streamed == reply_text_for(marker)
    forwarded = upstream_double.records_mentioning(marker)
    assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, temporary_key, "openai")
    assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "openai")
    assert {model.id for model in client.models.list()} == MODELS_SERVED_IN_OPENAI_PROTOCOL


def test_temporary_key_keeps_the_scope_of_its_parent(
        keygate_server, make_openai_client, api_key_scoped_to_demo_echo_and_double_chat):
    temporary_key = mint_temporary_api_key(keygate_server, api_key_scoped_to_demo_echo_and_double_chat)
    client = make_openai_client(temporary_key)
    assert chat(client, DEMO_CHAT_MODEL, "in scope").choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.embeddings.create(model=DEMO_EMBEDDING_MODEL, input=["out of scope"])
    assert_openai_error_body(raised.value, 403, "model_access_denied")
    assert sorted(model.id for model in client.models.list()) == sorted([DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])


def test_temporary_key_cannot_mint_another(keygate_server, api_key_with_all_permissions):
    temporary_key = mint_temporary_api_key(keygate_server, api_key_with_all_permissions)
    status, body = send_raw_request(
        "POST",
        f"{keygate_server.base_url(PRIMARY_REGION)}/api/v1/tokens?expire_in_seconds=60",
        headers={"authorization": f"Bearer {temporary_key}"},
    )
    assert status == 403, (status, body)
    assert b'"AccessDenied"' in body, body
    assert b"st-" not in body, "a token was handed out"


def test_expired_temporary_key_raises_authentication_error_that_says_expired(
        keygate_server, make_openai_client, api_key_with_all_permissions):
    temporary_key = mint_temporary_api_key(keygate_server, api_key_with_all_permissions, expire_in_seconds=1)
    time.sleep(2.2)
    with pytest.raises(openai.AuthenticationError) as raised:
        chat(make_openai_client(temporary_key), DEMO_CHAT_MODEL, "too late")
    assert_openai_error_body(raised.value, 401, "invalid_api_key")
    assert "expire" in raised.value.response.json()["error"]["message"].lower(), raised.value.response.json()


# ---- the upstream double itself --------------------------------------------------------------


def test_upstream_double_refuses_a_call_without_the_upstream_credential(upstream_double, api_key_with_all_permissions):
    """Harness self-check: called directly with a keygate key instead of the upstream's
    credential, the double answers 401, so a wrongly forwarded call cannot pass unnoticed."""
    direct = openai.OpenAI(base_url=f"{upstream_double.base_url}/openai/v1", api_key=api_key_with_all_permissions, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        chat(direct, DOUBLE_CHAT_MODEL, "straight to the double")
