"""The OpenAI Responses API through the official `openai` SDK (docs/CONTRACT.md#responses-api),
as the Codex CLI speaks it: `responses.create`, `responses.stream`, `responses.retrieve`,
`responses.delete` and `responses.input_items.list`, answered by the demo and by the upstream
double, under `/compatible-mode/v1` and under Model Studio's own base
`/api/v2/apps/protocols/compatible-mode/v1`; and the workspace rule: a response id is usable
only by keys of the workspace that made it, and `previous_response_id` too.
"""

from __future__ import annotations

import uuid

import openai
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DOUBLE_CHAT_MODEL,
    PRIMARY_REGION,
    assert_successful_envelope,
    create_api_key,
)
from upstream_double import assert_forwarded_with_upstream_credential_only, reply_text_for

DEMO_REPLY_PREFIX = "[keygate demo] echo: "
BASES = ["/compatible-mode/v1", "/api/v2/apps/protocols/compatible-mode/v1"]


def expected_reply(model_name: str, heard: str) -> str:
    return reply_text_for(heard) if model_name == DOUBLE_CHAT_MODEL else DEMO_REPLY_PREFIX + heard


def marker(label: str) -> str:
    return f"{label} marker {uuid.uuid4().hex[:12]} one two"


@pytest.fixture(scope="module")
def make_client(keygate_server):
    def make(key: str, base: str = BASES[0]) -> openai.OpenAI:
        return openai.OpenAI(base_url=keygate_server.base_url(PRIMARY_REGION) + base, api_key=key, max_retries=0, timeout=30)
    return make


@pytest.fixture(scope="module")
def other_workspace_key(keygate_server, root_client) -> str:
    """An All key of another workspace, granted both chat models."""
    created = root_client.create_workspace(modelstudio_models.CreateWorkspaceRequest(workspace_name="responses-" + uuid.uuid4().hex[:8]))
    assert_successful_envelope(created)
    workspace_id = created.body.workspace.workspace_id
    granted = root_client.update_model_permissions(modelstudio_models.UpdateModelPermissionsRequest(
        workspace_id=workspace_id,
        models=[modelstudio_models.UpdateModelPermissionsRequestModels(model=model, inference=True) for model in (DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL)],
    ))
    assert_successful_envelope(granted)
    return create_api_key(keygate_server, root_client, workspace_id, "responses: other workspace").api_key_value


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_create_retrieve_list_input_items_and_delete(model_name, base, make_client, api_key_with_all_permissions):
    client = make_client(api_key_with_all_permissions, base)
    said = marker("create")
    created = client.responses.create(model=model_name, input=said)
    assert (created.object, created.status, created.model) == ("response", "completed", model_name)
    assert created.output_text == expected_reply(model_name, said)
    assert created.usage.input_tokens > 0 and created.usage.output_tokens > 0

    retrieved = client.responses.retrieve(created.id)
    assert (retrieved.id, retrieved.output_text) == (created.id, created.output_text)
    items = list(client.responses.input_items.list(created.id))
    assert len(items) == 1 and items[0].role == "user"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_a_streamed_response_arrives_as_events_and_completes_with_usage(model_name, make_client, api_key_with_all_permissions):
    said = marker("stream")
    with make_client(api_key_with_all_permissions).responses.stream(model=model_name, input=said) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    assert "response.output_text.delta" in kinds
    assert final.output_text == expected_reply(model_name, said)
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens > 0


def test_the_double_receives_the_deployments_credential_at_its_responses_path(
        make_client, api_key_with_all_permissions, upstream_double, upstream_secret):
    said = marker("credential")
    make_client(api_key_with_all_permissions).responses.create(model=DOUBLE_CHAT_MODEL, input=said)
    forwarded = upstream_double.records_mentioning(said.split()[2])
    assert [record.path for record in forwarded] == ["/openai/v1/responses"]
    assert_forwarded_with_upstream_credential_only(forwarded, upstream_secret, api_key_with_all_permissions, "openai")


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_a_response_is_named_only_by_keys_of_its_workspace(
        model_name, make_client, api_key_with_all_permissions, other_workspace_key, upstream_double):
    mine = make_client(api_key_with_all_permissions)
    theirs = make_client(other_workspace_key)
    created = mine.responses.create(model=model_name, input=marker("owned"))
    forwarded_before = len(upstream_double.all_records())
    for attempt in (lambda: theirs.responses.retrieve(created.id),
                    lambda: theirs.responses.delete(created.id),
                    lambda: list(theirs.responses.input_items.list(created.id)),
                    lambda: theirs.responses.create(model=model_name, input="go on", previous_response_id=created.id)):
        with pytest.raises(openai.NotFoundError) as raised:
            attempt()
        assert raised.value.code == "not_found" and created.id in raised.value.message
        assert raised.value.response.headers.get("x-should-retry") == "false"
    # Nothing of it reached the provider, and the response is still there for its own workspace.
    assert len(upstream_double.all_records()) == forwarded_before
    assert mine.responses.retrieve(created.id).id == created.id
    follow_up = mine.responses.create(model=model_name, input=marker("follow"), previous_response_id=created.id)
    assert follow_up.status == "completed"


def test_an_unknown_response_id_is_not_found_and_not_forwarded(make_client, api_key_with_all_permissions, upstream_double):
    before = len(upstream_double.all_records())
    with pytest.raises(openai.NotFoundError):
        make_client(api_key_with_all_permissions).responses.retrieve("resp_" + uuid.uuid4().hex)
    assert len(upstream_double.all_records()) == before
