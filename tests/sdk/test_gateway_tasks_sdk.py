"""DashScope's asynchronous tasks through the official `dashscope` SDK
(docs/CONTRACT.md#asynchronous-tasks): `ImageSynthesis.async_call` (a native call with
`X-DashScope-Async: enable`) answered by the demo and by the upstream double, then
`ImageSynthesis.fetch` and `ImageSynthesis.wait` polling `GET /api/v1/tasks/{task_id}`; a
task is shown only to keys of the workspace that submitted it, and to any other key it is
`UNKNOWN`, as DashScope answers for a task that does not exist, without reaching the
provider.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus

import dashscope
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from dashscope import ImageSynthesis

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DOUBLE_CHAT_MODEL,
    PRIMARY_REGION,
    assert_successful_envelope,
    create_api_key,
)
from upstream_double import assert_forwarded_with_upstream_credential_only


@pytest.fixture(autouse=True)
def keygate_base_url(keygate_server):
    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{keygate_server.base_url(PRIMARY_REGION)}/api/v1"
    yield
    dashscope.base_http_api_url = previous


@pytest.fixture(scope="module")
def other_workspace_key(keygate_server, root_client) -> str:
    created = root_client.create_workspace(modelstudio_models.CreateWorkspaceRequest(workspace_name="tasks-" + uuid.uuid4().hex[:8]))
    assert_successful_envelope(created)
    workspace_id = created.body.workspace.workspace_id
    granted = root_client.update_model_permissions(modelstudio_models.UpdateModelPermissionsRequest(
        workspace_id=workspace_id,
        models=[modelstudio_models.UpdateModelPermissionsRequestModels(model=model, inference=True) for model in (DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL)],
    ))
    assert_successful_envelope(granted)
    return create_api_key(keygate_server, root_client, workspace_id, "tasks: other workspace").api_key_value


def prompt(label: str) -> str:
    return f"{label} marker {uuid.uuid4().hex[:12]} a lighthouse"


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_an_image_task_is_submitted_then_polled_to_success(model_name, api_key_with_all_permissions):
    said = prompt("image")
    submitted = ImageSynthesis.async_call(model=model_name, prompt=said, api_key=api_key_with_all_permissions)
    assert submitted.status_code == HTTPStatus.OK, submitted
    assert submitted.output.task_status == "PENDING" and submitted.output.task_id
    finished = ImageSynthesis.wait(submitted, api_key=api_key_with_all_permissions)
    assert finished.status_code == HTTPStatus.OK, finished
    assert finished.output.task_status == "SUCCEEDED"
    assert finished.output.task_id == submitted.output.task_id
    assert finished.output.results[0].url
    fetched = ImageSynthesis.fetch(submitted.output.task_id, api_key=api_key_with_all_permissions)
    assert fetched.output.task_status == "SUCCEEDED"


def test_the_double_gets_the_deployments_credential_for_submission_and_polling(api_key_with_all_permissions, upstream_double, upstream_secret):
    said = prompt("credential")
    submitted = ImageSynthesis.async_call(model=DOUBLE_CHAT_MODEL, prompt=said, api_key=api_key_with_all_permissions)
    task_id = submitted.output.task_id
    assert_forwarded_with_upstream_credential_only(upstream_double.records_mentioning(said.split()[2]), upstream_secret,
                                                   api_key_with_all_permissions, "dashscope")
    ImageSynthesis.fetch(task_id, api_key=api_key_with_all_permissions)
    polls = upstream_double.records_mentioning(task_id)
    assert [record.path for record in polls] == [f"/dashscope/api/v1/tasks/{task_id}"]
    assert_forwarded_with_upstream_credential_only(polls, upstream_secret, api_key_with_all_permissions, "dashscope")


@pytest.mark.parametrize("model_name", [DEMO_CHAT_MODEL, DOUBLE_CHAT_MODEL])
def test_a_task_is_unknown_to_keys_of_another_workspace(model_name, api_key_with_all_permissions, other_workspace_key, upstream_double):
    submitted = ImageSynthesis.async_call(model=model_name, prompt=prompt("owned"), api_key=api_key_with_all_permissions)
    task_id = submitted.output.task_id
    before = len(upstream_double.all_records())
    theirs = ImageSynthesis.fetch(task_id, api_key=other_workspace_key)
    assert theirs.status_code == HTTPStatus.OK and theirs.output.task_status == "UNKNOWN"
    assert len(upstream_double.all_records()) == before
    assert ImageSynthesis.fetch(task_id, api_key=api_key_with_all_permissions).output.task_status == "SUCCEEDED"
    never_made = ImageSynthesis.fetch(str(uuid.uuid4()), api_key=api_key_with_all_permissions)
    assert never_made.output.task_status == "UNKNOWN"
    # Only the owner's poll of the double's task reached the double.
    assert len(upstream_double.all_records()) == before + (1 if model_name == DOUBLE_CHAT_MODEL else 0)
