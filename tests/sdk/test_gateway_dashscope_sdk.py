"""The official `dashscope` Python SDK (2.0.2), pointed at keygate by changing only
`dashscope.base_http_api_url` and the key, calling the gateway's native DashScope paths
(docs/CONTRACT.md#data-plane, docs/CONTRACT.md#data-plane-errors):

- Generation.call with result_format='message', streaming with incremental_output unset,
  True and False (the SDK then asks for increments and merges them itself), and
  TextEmbedding.call, answered by the demo upstream and by the upstream test double, which
  must receive keygate's upstream credential and never the client's key;
- Application.call to an application created through keygate's own API (no upstream serves
  apps in the suite's config, so the demo answers), streaming too;
- the SDK's refusals: it returns a response with status_code/code instead of raising, so
  these tests assert on those: 401 InvalidApiKey (bad key), 403 Model.AccessDenied (model
  out of the key's scope, or not granted to a sub-workspace), 403 App.AccessDenied (another
  workspace's app), 404 ModelNotFound, 400 InvalidParameter (a model served only through
  another protocol), 502 InternalError (upstream unreachable);
- `workspace=` (X-DashScope-WorkSpace): the key's own workspace works, any other answers
  403 Workspace.AccessDenied.
"""

from __future__ import annotations

import secrets
import time
import uuid
from http import HTTPStatus

import dashscope
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    CLASSIC_REGION,
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    DOUBLE_CHAT_MODEL,
    DOUBLE_EMBEDDING_MODEL,
    DOUBLE_OPENAI_ONLY_MODEL,
    PRIMARY_REGION,
    UNREACHABLE_UPSTREAM_MODEL,
    assert_successful_envelope,
    create_api_key,
    create_application,
    delete_api_key_quietly,
)
from upstream_double import assert_forwarded_with_upstream_credential_only, reply_text_for

DEMO_REPLY_PREFIX = "[keygate demo] echo: "
DEMO_EMBEDDING_DIMENSIONS = 8


def expected_reply(model_name: str, heard: str) -> str:
    if model_name == DOUBLE_CHAT_MODEL:
        return reply_text_for(heard)
    return DEMO_REPLY_PREFIX + heard


def unique_marker(label: str) -> str:
    """Words unique to one test, so that its request can be found among the double's."""
    return f"{label} marker {uuid.uuid4().hex[:12]} one two three four five"


def a_key_that_does_not_exist() -> str:
    return "sk-ws-" + secrets.token_hex(19)


def assert_dashscope_refusal(response, expected_status: int, expected_code: str) -> None:
    """The SDK's response for a non-200 answer: status_code, code, message and request_id
    come from keygate's native error body; output is empty."""
    assert response.status_code == expected_status, (response.status_code, response.code, response.message)
    assert response.code == expected_code, (response.status_code, response.code, response.message)
    assert isinstance(response.message, str) and response.message, response
    assert isinstance(response.request_id, str) and response.request_id, response
    assert response.output is None, response


@pytest.fixture(scope="module", autouse=True)
def dashscope_pointed_at_keygate(keygate_server):
    """Only the base URL changes; every call passes its key with api_key=."""
    previous_base_url = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{keygate_server.base_url(PRIMARY_REGION)}/api/v1"
    yield
    dashscope.base_http_api_url = previous_base_url


@pytest.fixture(scope="module")
def application_in_default_workspace(keygate_server, root_session_token, default_workspace_id) -> str:
    return create_application(keygate_server, root_session_token, default_workspace_id, "dashscope sdk app " + uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def sub_workspace_granted_only_double_chat(keygate_server, root_client, root_session_token, default_workspace_id):
    """A sub-workspace granted inference on `double-chat` only, an All key of it, and an
    application of it. Yields (workspace_id, key plaintext, app_id)."""
    created = root_client.create_workspace(
        modelstudio_models.CreateWorkspaceRequest(workspace_name="gateway-sub-" + uuid.uuid4().hex[:8])
    )
    assert_successful_envelope(created)
    workspace_id = created.body.workspace.workspace_id
    assert workspace_id != default_workspace_id
    granted = root_client.update_model_permissions(
        modelstudio_models.UpdateModelPermissionsRequest(
            workspace_id=workspace_id,
            models=[modelstudio_models.UpdateModelPermissionsRequestModels(model=DOUBLE_CHAT_MODEL, inference=True)],
        )
    )
    assert_successful_envelope(granted)
    key = create_api_key(keygate_server, root_client, workspace_id, "gateway tests: sub-workspace")
    app_id = create_application(keygate_server, root_session_token, workspace_id, "sub-workspace app")
    yield workspace_id, key.api_key_value, app_id
    delete_api_key_quietly(root_client, key.api_key_id)


# ---- generation, to the demo and to the double -----------------------------------------------


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_generation_call_with_message_result_format_returns_the_reply(
        model_name, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("generation")
    response = dashscope.Generation.call(
        model=model_name,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": marker}],
        result_format="message",
        api_key=api_key_with_all_permissions,
    )
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    assert response.output.choices[0].message.role == "assistant"
    assert response.output.choices[0].message.content == expected_reply(model_name, marker)
    assert response.output.choices[0].finish_reason == "stop"
    assert isinstance(response.request_id, str) and response.request_id
    assert response.usage.total_tokens > 0
    forwarded = upstream_double.records_mentioning(marker)
    if model_name == DOUBLE_CHAT_MODEL:
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "dashscope")
        assert forwarded[0].path == "/dashscope/api/v1/services/aigc/text-generation/generation"
        assert forwarded[0].json_body()["parameters"]["result_format"] == "message"
    else:
        assert forwarded == [], "a demo model's call reached the upstream double"


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_generation_call_with_prompt_and_text_result_format_returns_output_text(model_name, api_key_with_all_permissions):
    marker = unique_marker("prompt")
    response = dashscope.Generation.call(model=model_name, prompt=marker, api_key=api_key_with_all_permissions)
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    assert response.output.text == expected_reply(model_name, marker)


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_generation_stream_without_incremental_output_sends_the_whole_text_so_far(
        model_name, api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("stream whole")
    responses = list(dashscope.Generation.call(
        model=model_name, messages=[{"role": "user", "content": marker}], result_format="message",
        stream=True, api_key=api_key_with_all_permissions,
    ))
    assert len(responses) >= 2, "the answer came in one event"
    assert all(response.status_code == HTTPStatus.OK for response in responses), [response.code for response in responses]
    texts = [response.output.choices[0].message.content for response in responses]
    for earlier, later in zip(texts, texts[1:]):
        assert later.startswith(earlier) and len(later) > len(earlier), texts
    assert texts[-1] == expected_reply(model_name, marker)
    assert responses[-1].output.choices[0].finish_reason == "stop"
    if model_name == DOUBLE_CHAT_MODEL:
        forwarded = upstream_double.records_mentioning(marker)
        assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "dashscope")
        assert forwarded[0].headers.get("x-dashscope-sse") == "enable", forwarded[0].headers


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_generation_stream_with_incremental_output_sends_pieces_that_join_to_the_reply(
        model_name, api_key_with_all_permissions):
    marker = unique_marker("stream pieces")
    responses = list(dashscope.Generation.call(
        model=model_name, messages=[{"role": "user", "content": marker}], result_format="message",
        stream=True, incremental_output=True, api_key=api_key_with_all_permissions,
    ))
    assert all(response.status_code == HTTPStatus.OK for response in responses), [response.code for response in responses]
    pieces = [response.output.choices[0].message.content for response in responses]
    assert len(pieces) >= 2, pieces
    assert "".join(pieces) == expected_reply(model_name, marker), pieces
    assert all(piece != expected_reply(model_name, marker) for piece in pieces), "a piece held the whole reply"


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_generation_stream_with_incremental_output_false_is_merged_by_the_sdk(
        model_name, api_key_with_all_permissions, upstream_double):
    """dashscope 2.0.2 sends incremental_output=true upstream and merges the pieces itself."""
    marker = unique_marker("stream merged")
    responses = list(dashscope.Generation.call(
        model=model_name, messages=[{"role": "user", "content": marker}], result_format="message",
        stream=True, incremental_output=False, api_key=api_key_with_all_permissions,
    ))
    assert all(response.status_code == HTTPStatus.OK for response in responses), [response.code for response in responses]
    assert responses[-1].output.choices[0].message.content == expected_reply(model_name, marker)
    if model_name == DOUBLE_CHAT_MODEL:
        [forwarded] = upstream_double.records_mentioning(marker)
        assert forwarded.json_body()["parameters"]["incremental_output"] is True


def test_generation_stream_from_the_double_passes_through_without_buffering(api_key_with_all_permissions):
    """The double pauses 1.5 s before its last event: the first pieces must arrive before it."""
    marker = unique_marker("slow native stream")
    arrival_times = []
    for response in dashscope.Generation.call(
            model=DOUBLE_CHAT_MODEL, messages=[{"role": "user", "content": marker}], result_format="message",
            stream=True, incremental_output=True, api_key=api_key_with_all_permissions,
            headers={"X-Test-Slow-Stream": "1"}):
        assert response.status_code == HTTPStatus.OK, (response.code, response.message)
        arrival_times.append(time.monotonic())
    assert len(arrival_times) >= 2
    assert arrival_times[-1] - arrival_times[0] >= 1.0, "keygate buffered the stream instead of passing it through"


# ---- embeddings -------------------------------------------------------------------------------


def test_text_embedding_call_to_the_demo_returns_one_deterministic_vector_per_text(api_key_with_all_permissions):
    texts = ["first text " + uuid.uuid4().hex, "second text " + uuid.uuid4().hex]
    response = dashscope.TextEmbedding.call(model=DEMO_EMBEDDING_MODEL, input=texts, api_key=api_key_with_all_permissions)
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    embeddings = response.output["embeddings"]
    assert [embedding["text_index"] for embedding in embeddings] == [0, 1]
    for embedding in embeddings:
        assert len(embedding["embedding"]) == DEMO_EMBEDDING_DIMENSIONS
        assert all(-1.0 <= value <= 1.0 for value in embedding["embedding"])
    assert embeddings[0]["embedding"] != embeddings[1]["embedding"]
    again = dashscope.TextEmbedding.call(model=DEMO_EMBEDDING_MODEL, input=texts[:1], api_key=api_key_with_all_permissions)
    assert again.output["embeddings"][0]["embedding"] == embeddings[0]["embedding"]


def test_text_embedding_call_to_the_double_carries_the_upstream_credential_only(
        api_key_with_all_permissions, upstream_double, upstream_secret):
    marker = unique_marker("native embedding")
    response = dashscope.TextEmbedding.call(model=DOUBLE_EMBEDDING_MODEL, input=[marker, "other"], api_key=api_key_with_all_permissions)
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    assert [embedding["text_index"] for embedding in response.output["embeddings"]] == [0, 1]
    forwarded = upstream_double.records_mentioning(marker)
    assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "dashscope")
    assert forwarded[0].path == "/dashscope/api/v1/services/embeddings/text-embedding/text-embedding"


# ---- applications -----------------------------------------------------------------------------


def test_application_call_to_an_application_of_the_key_workspace_is_answered(
        api_key_with_all_permissions, application_in_default_workspace):
    marker = unique_marker("application")
    response = dashscope.Application.call(app_id=application_in_default_workspace, prompt=marker, api_key=api_key_with_all_permissions)
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    assert response.output.text == DEMO_REPLY_PREFIX + marker
    assert response.output.finish_reason == "stop"


def test_application_call_streaming_with_incremental_output_joins_to_the_reply(
        api_key_with_all_permissions, application_in_default_workspace):
    marker = unique_marker("application stream")
    responses = list(dashscope.Application.call(
        app_id=application_in_default_workspace, prompt=marker, stream=True, incremental_output=True,
        api_key=api_key_with_all_permissions,
    ))
    assert all(response.status_code == HTTPStatus.OK for response in responses), [response.code for response in responses]
    assert len(responses) >= 2
    assert "".join(response.output.text for response in responses) == DEMO_REPLY_PREFIX + marker


def test_application_call_with_the_key_own_workspace_argument_is_answered(
        api_key_with_all_permissions, application_in_default_workspace, default_workspace_id):
    response = dashscope.Application.call(
        app_id=application_in_default_workspace, prompt="hello", workspace=default_workspace_id, api_key=api_key_with_all_permissions,
    )
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)


def test_application_call_to_another_workspace_application_answers_app_access_denied(
        api_key_with_all_permissions, sub_workspace_granted_only_double_chat):
    _, _, other_workspace_app_id = sub_workspace_granted_only_double_chat
    response = dashscope.Application.call(app_id=other_workspace_app_id, prompt="hello", api_key=api_key_with_all_permissions)
    assert_dashscope_refusal(response, 403, "App.AccessDenied")


def test_application_call_to_an_unknown_application_answers_app_access_denied(api_key_with_all_permissions):
    response = dashscope.Application.call(app_id=uuid.uuid4().hex, prompt="hello", api_key=api_key_with_all_permissions)
    assert_dashscope_refusal(response, 403, "App.AccessDenied")


# ---- refusals ---------------------------------------------------------------------------------


def test_generation_call_with_a_key_that_does_not_exist_answers_invalid_api_key(upstream_double):
    marker = unique_marker("bad key")
    bad_key = a_key_that_does_not_exist()
    response = dashscope.Generation.call(model=DOUBLE_CHAT_MODEL, prompt=marker, api_key=bad_key)
    assert_dashscope_refusal(response, 401, "InvalidApiKey")
    assert upstream_double.records_mentioning(marker) == []


def test_generation_call_to_a_model_out_of_the_key_scope_answers_model_access_denied(
        api_key_scoped_to_demo_echo_and_double_chat, upstream_double):
    in_scope = dashscope.Generation.call(model=DOUBLE_CHAT_MODEL, prompt="in scope", api_key=api_key_scoped_to_demo_echo_and_double_chat)
    assert in_scope.status_code == HTTPStatus.OK, (in_scope.code, in_scope.message)

    marker = unique_marker("out of scope")
    for model_name in (DEMO_EMBEDDING_MODEL, DOUBLE_EMBEDDING_MODEL):
        response = dashscope.TextEmbedding.call(model=model_name, input=[marker], api_key=api_key_scoped_to_demo_echo_and_double_chat)
        assert_dashscope_refusal(response, 403, "Model.AccessDenied")
    assert upstream_double.records_mentioning(marker) == [], "a refused call reached the upstream"


def test_sub_workspace_key_may_call_only_the_models_granted_to_its_workspace(sub_workspace_granted_only_double_chat):
    _, sub_workspace_key, _ = sub_workspace_granted_only_double_chat
    granted = dashscope.Generation.call(model=DOUBLE_CHAT_MODEL, prompt="granted", api_key=sub_workspace_key)
    assert granted.status_code == HTTPStatus.OK, (granted.code, granted.message)
    not_granted = dashscope.Generation.call(model=DEMO_CHAT_MODEL, prompt="not granted", api_key=sub_workspace_key)
    assert_dashscope_refusal(not_granted, 403, "Model.AccessDenied")
    # The message names the model and says why: the workspace was not granted it.
    assert f"has not been granted the model '{DEMO_CHAT_MODEL}'" in not_granted.message, not_granted.message


def test_generation_call_to_an_unknown_model_answers_model_not_found(api_key_with_all_permissions):
    response = dashscope.Generation.call(model="no-such-model-" + uuid.uuid4().hex[:8], prompt="hello", api_key=api_key_with_all_permissions)
    assert_dashscope_refusal(response, 404, "ModelNotFound")


def test_generation_call_to_a_model_served_only_in_openai_protocol_answers_invalid_parameter(api_key_with_all_permissions):
    response = dashscope.Generation.call(model=DOUBLE_OPENAI_ONLY_MODEL, prompt="hello", api_key=api_key_with_all_permissions)
    assert_dashscope_refusal(response, 400, "InvalidParameter")
    assert "OpenAI-compatible" in response.message, response.message


def test_generation_call_to_an_unreachable_upstream_answers_502_internal_error(api_key_with_all_permissions):
    response = dashscope.Generation.call(model=UNREACHABLE_UPSTREAM_MODEL, prompt="anyone there?", api_key=api_key_with_all_permissions)
    assert_dashscope_refusal(response, 502, "InternalError")


# ---- X-DashScope-WorkSpace (workspace=) ----------------------------------------------------


def test_workspace_argument_naming_the_key_own_workspace_is_answered(api_key_with_all_permissions, default_workspace_id):
    marker = unique_marker("own workspace")
    response = dashscope.Generation.call(
        model=DEMO_CHAT_MODEL, prompt=marker, workspace=default_workspace_id, api_key=api_key_with_all_permissions,
    )
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    assert response.output.text == DEMO_REPLY_PREFIX + marker


def test_workspace_argument_naming_another_workspace_answers_workspace_access_denied(
        api_key_with_all_permissions, default_workspace_id_by_region, sub_workspace_granted_only_double_chat, upstream_double):
    sub_workspace_id, _, _ = sub_workspace_granted_only_double_chat
    other_workspaces = [
        sub_workspace_id,                                   # the same account, same region
        default_workspace_id_by_region[CLASSIC_REGION],     # the same account, another region
        "llm-" + "0" * 16,                                  # no such workspace
    ]
    marker = unique_marker("other workspace")
    for other_workspace_id in other_workspaces:
        response = dashscope.Generation.call(
            model=DOUBLE_CHAT_MODEL, prompt=marker, workspace=other_workspace_id, api_key=api_key_with_all_permissions,
        )
        assert_dashscope_refusal(response, 403, "Workspace.AccessDenied")
    assert upstream_double.records_mentioning(marker) == []
