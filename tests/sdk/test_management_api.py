"""Drives every Model Studio management operation through the official Python SDK
(alibabacloud-modelstudio20260210 2.2.3) against a real `keygate serve`, and checks the
documented response fields, their types and values (docs/CONTRACT.md#management-api,
docs/CONTRACT.md#key-fields, docs/CONTRACT.md#regions).

Covers: CreateApiKey (All, Custom), ListApiKeys (filters, paging, ordering), GetApiKey
(masking), UpdateApiKey, DisableApiKey/EnableApiKey, ResetApiKey, DeleteApiKey,
ListWorkspaces, CreateWorkspace, DeleteWorkspace, ListModelPermissions,
UpdateModelPermissions; the us-east-1 region rules (classic keys, no Custom, no
Disable/Reset, 20 keys per creator); RAM-user visibility and roles; bearer sessions; and
the JSON error envelope of a raw request.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_tea_openapi.exceptions import ClientException

from keygate_harness import (
    CLASSIC_REGION,
    PRIMARY_REGION,
    assert_client_exception,
    assert_error_envelope,
    assert_successful_envelope,
    create_api_key,
    delete_api_key_quietly,
    send_raw_request,
    send_raw_request_with_headers,
)

WORKSPACE_ID_PATTERN = re.compile(r"^llm-[a-z0-9]{16}$")
SECURE_KEY_PATTERN = re.compile(r"^sk-ws-[A-Za-z0-9]{38}$")
CLASSIC_KEY_PATTERN = re.compile(r"^sk-[0-9a-f]{32}$")
CLASSIC_REGION_KEY_LIMIT_PER_CREATOR = 20
MAX_PAGES_TO_FOLLOW = 50


# ---- helpers -----------------------------------------------------------------------------


def unique_description(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:12]}"


def unique_workspace_name(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def is_plain_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def expected_masked_form(plaintext: str) -> str:
    """docs/CONTRACT.md#storage-and-display-of-keys: the prefix, the first 4 and the last 4
    characters of the body around ****."""
    prefix = "sk-ws-" if plaintext.startswith("sk-ws-") else "sk-"
    key_body = plaintext[len(prefix):]
    return f"{prefix}{key_body[:4]}****{key_body[-4:]}"


def assert_recent_epoch_milliseconds(value) -> None:
    assert is_plain_integer(value), value
    now_milliseconds = int(time.time() * 1000)
    assert abs(now_milliseconds - value) < 10 * 60 * 1000, (value, now_milliseconds)


def all_auth(auth_class=modelstudio_models.CreateApiKeyRequestAuth):
    return auth_class(type="All")


def custom_auth(access_ips, accessible_models, allow_all_models=False,
                auth_class=modelstudio_models.CreateApiKeyRequestAuth,
                scope_class=modelstudio_models.CreateApiKeyRequestAuthModelAccessScope):
    return auth_class(
        type="Custom",
        access_ips=list(access_ips) or None,
        model_access_scope=scope_class(allow_all_models=allow_all_models, accessible_models=list(accessible_models)),
    )


def get_api_key(client, api_key_id: int):
    response = client.get_api_key(str(api_key_id))
    assert_successful_envelope(response)
    assert response.body.api_key is not None, response.body.to_map()
    return response.body.api_key


def list_api_keys(client, **filters):
    response = client.list_api_keys(modelstudio_models.ListApiKeysRequest(**filters))
    assert_successful_envelope(response)
    return response.body


def list_api_key_pages(client, **filters) -> list:
    """Follows nextToken until it is empty; returns the response bodies, page by page."""
    pages = []
    next_token = None
    for _ in range(MAX_PAGES_TO_FOLLOW):
        page = list_api_keys(client, next_token=next_token, **filters)
        pages.append(page)
        next_token = page.next_token
        if not next_token:
            return pages
    raise AssertionError(f"ListApiKeys still had a nextToken after {MAX_PAGES_TO_FOLLOW} pages")


def list_all_api_keys(client, **filters) -> list:
    return [api_key for page in list_api_key_pages(client, **filters) for api_key in page.api_keys]


def list_all_workspaces(client, **filters) -> list:
    workspaces = []
    next_token = None
    for _ in range(MAX_PAGES_TO_FOLLOW):
        response = client.list_workspaces(modelstudio_models.ListWorkspacesRequest(next_token=next_token, **filters))
        assert_successful_envelope(response)
        workspaces += response.body.workspaces or []
        next_token = response.body.next_token
        if not next_token:
            return workspaces
    raise AssertionError("ListWorkspaces never ended")


def list_all_model_permissions(client, workspace_id: str, **filters) -> list:
    entries = []
    next_token = None
    for _ in range(MAX_PAGES_TO_FOLLOW):
        response = client.list_model_permissions(
            modelstudio_models.ListModelPermissionsRequest(workspace_id=workspace_id, next_token=next_token, **filters)
        )
        assert_successful_envelope(response)
        entries += response.body.list or []
        next_token = response.body.next_token
        if not next_token:
            return entries
    raise AssertionError("ListModelPermissions never ended")


def create_workspace(client, workspace_name: str):
    response = client.create_workspace(modelstudio_models.CreateWorkspaceRequest(workspace_name=workspace_name))
    assert_successful_envelope(response)
    workspace = response.body.workspace
    assert workspace is not None, response.body.to_map()
    return workspace


def assert_plaintexts_absent(body_map: dict, plaintexts: list[str]) -> None:
    serialized = json.dumps(body_map)
    for plaintext in plaintexts:
        assert plaintext not in serialized, "a plaintext key came back after creation"


# ---- CreateApiKey --------------------------------------------------------------------------


def test_create_api_key_with_all_permissions_returns_secure_plaintext(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    description = unique_description("create all")
    created = create_api_key(keygate_server, root_client, default_workspace_id, description, all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))

    assert is_plain_integer(created.api_key_id) and created.api_key_id > 0
    assert SECURE_KEY_PATTERN.match(created.api_key_value), created.api_key_value
    assert created.created_by == "root"
    assert created.description == description
    assert created.workspace_id == default_workspace_id
    assert_recent_epoch_milliseconds(created.gmt_create)


def test_create_api_key_without_auth_is_all_permissions(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("no auth"))
    api_keys_to_delete.append((root_client, created.api_key_id))
    assert get_api_key(root_client, created.api_key_id).auth.type == "All"


def test_api_key_ids_increase(keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    first = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("id 1"))
    api_keys_to_delete.append((root_client, first.api_key_id))
    second = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("id 2"))
    api_keys_to_delete.append((root_client, second.api_key_id))
    assert second.api_key_id > first.api_key_id
    assert second.api_key_value != first.api_key_value


def test_create_api_key_with_custom_auth_round_trips_in_get(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(
        keygate_server, root_client, default_workspace_id, unique_description("create custom"),
        custom_auth(["10.0.0.0/8", "192.168.1.1"], ["qwen-plus"]),
    )
    api_keys_to_delete.append((root_client, created.api_key_id))

    fetched = get_api_key(root_client, created.api_key_id)
    assert fetched.auth.type == "Custom"
    assert fetched.auth.access_ips == ["10.0.0.0/8", "192.168.1.1"]
    assert fetched.auth.model_access_scope.allow_all_models is False
    assert fetched.auth.model_access_scope.accessible_models == ["qwen-plus"]


def test_create_api_key_in_unknown_workspace_is_refused_and_creates_nothing(
        keygate_server, root_client):
    description = unique_description("unknown workspace")
    with pytest.raises(ClientException) as raised:
        create_api_key(keygate_server, root_client, "llm-0000000000000000", description)
    assert raised.value.status_code in (400, 403, 404), (raised.value.status_code, raised.value.data)
    assert_client_exception(raised.value, raised.value.status_code)
    assert list_all_api_keys(root_client, description=description) == []


# ---- GetApiKey -----------------------------------------------------------------------------


def test_get_api_key_shows_masked_value_and_documented_fields(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    description = unique_description("get fields")
    created = create_api_key(keygate_server, root_client, default_workspace_id, description, all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))

    response = root_client.get_api_key(str(created.api_key_id))
    assert_successful_envelope(response)
    assert_plaintexts_absent(response.body.to_map(), [created.api_key_value])
    fetched = response.body.api_key

    assert fetched.api_key_value != created.api_key_value
    assert fetched.api_key_value.startswith("sk-ws-")
    assert "****" in fetched.api_key_value
    assert fetched.api_key_value == expected_masked_form(created.api_key_value)
    assert fetched.api_key_id == created.api_key_id and is_plain_integer(fetched.api_key_id)
    assert fetched.created_by == "root"
    assert fetched.description == description
    assert fetched.disabled == 0 and is_plain_integer(fetched.disabled)
    assert fetched.gmt_create == created.gmt_create
    assert fetched.workspace_id == default_workspace_id
    assert isinstance(fetched.workspace_name, str) and fetched.workspace_name
    assert fetched.auth.type == "All"


def test_get_unknown_api_key_answers_api_key_not_found(root_client):
    with pytest.raises(ClientException) as raised:
        root_client.get_api_key("987654321")
    assert_client_exception(raised.value, 404, "ApiKey.NotFound")


# ---- ListApiKeys ---------------------------------------------------------------------------


def test_list_api_keys_filters_by_api_key_id_description_and_workspace(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    first_description = unique_description("filter first")
    second_description = unique_description("filter second")
    first = create_api_key(keygate_server, root_client, default_workspace_id, first_description, all_auth())
    api_keys_to_delete.append((root_client, first.api_key_id))
    second = create_api_key(keygate_server, root_client, default_workspace_id, second_description, all_auth())
    api_keys_to_delete.append((root_client, second.api_key_id))

    by_id = list_api_keys(root_client, api_key_id=first.api_key_id)
    assert [api_key.api_key_id for api_key in by_id.api_keys] == [first.api_key_id]
    assert by_id.total_count == 1 and is_plain_integer(by_id.total_count)

    by_description = list_api_keys(root_client, description=second_description)
    assert [api_key.api_key_id for api_key in by_description.api_keys] == [second.api_key_id]

    in_default_workspace = list_all_api_keys(root_client, workspace_id=default_workspace_id)
    listed_ids = {api_key.api_key_id for api_key in in_default_workspace}
    assert {first.api_key_id, second.api_key_id} <= listed_ids
    assert all(api_key.workspace_id == default_workspace_id for api_key in in_default_workspace)

    listed_first = by_id.api_keys[0]
    assert listed_first.api_key_value == expected_masked_form(first.api_key_value)
    assert listed_first.description == first_description
    assert listed_first.created_by == "root"
    assert listed_first.disabled == 0
    assert listed_first.auth.type == "All"
    assert isinstance(listed_first.workspace_name, str) and listed_first.workspace_name
    assert_recent_epoch_milliseconds(listed_first.gmt_create)
    assert_plaintexts_absent(by_id.to_map(), [first.api_key_value, second.api_key_value])


@pytest.fixture(scope="module")
def paging_workspace_with_five_keys(keygate_server, root_client, default_workspace_id_by_region):
    """A sub-workspace holding exactly five keys of root, so that paging and ordering can
    be checked without the other tests' keys getting in the way."""
    workspace = create_workspace(root_client, unique_workspace_name("paging"))
    created_ids = []
    for index in range(5):
        created = create_api_key(
            keygate_server, root_client, workspace.workspace_id, unique_description(f"paging {index}"), all_auth()
        )
        created_ids.append(created.api_key_id)
    yield workspace.workspace_id, created_ids
    for api_key_id in created_ids:
        delete_api_key_quietly(root_client, api_key_id)


def test_list_api_keys_pages_with_max_results_and_next_token(root_client, paging_workspace_with_five_keys):
    workspace_id, created_ids = paging_workspace_with_five_keys
    pages = list_api_key_pages(root_client, workspace_id=workspace_id, max_results=2)

    assert [len(page.api_keys) for page in pages] == [2, 2, 1]
    for page in pages:
        assert page.total_count == 5
        assert page.max_results == 2
    for page in pages[:-1]:
        assert isinstance(page.next_token, str) and page.next_token
    assert not pages[-1].next_token
    listed_ids = [api_key.api_key_id for page in pages for api_key in page.api_keys]
    assert sorted(listed_ids) == sorted(created_ids), "every key exactly once across the pages"


def test_list_api_keys_orders_by_api_key_id_in_both_directions(root_client, paging_workspace_with_five_keys):
    workspace_id, created_ids = paging_workspace_with_five_keys
    ascending = list_api_keys(root_client, workspace_id=workspace_id, order="ASC", order_by="apiKeyId", max_results=10)
    assert [api_key.api_key_id for api_key in ascending.api_keys] == sorted(created_ids)
    descending = list_api_keys(root_client, workspace_id=workspace_id, order="DESC", order_by="apiKeyId", max_results=10)
    assert [api_key.api_key_id for api_key in descending.api_keys] == sorted(created_ids, reverse=True)
    lower_case = list_api_keys(root_client, workspace_id=workspace_id, order="desc", order_by="apiKeyId", max_results=10)
    assert [api_key.api_key_id for api_key in lower_case.api_keys] == sorted(created_ids, reverse=True)


def test_list_api_keys_orders_by_gmt_create_in_both_directions(root_client, paging_workspace_with_five_keys):
    workspace_id, created_ids = paging_workspace_with_five_keys
    ascending = list_api_keys(root_client, workspace_id=workspace_id, order="ASC", order_by="gmtCreate", max_results=10)
    ascending_times = [api_key.gmt_create for api_key in ascending.api_keys]
    assert len(ascending_times) == 5 and ascending_times == sorted(ascending_times)
    descending = list_api_keys(root_client, workspace_id=workspace_id, order="DESC", order_by="gmtCreate", max_results=10)
    descending_times = [api_key.gmt_create for api_key in descending.api_keys]
    assert len(descending_times) == 5 and descending_times == sorted(descending_times, reverse=True)


def test_list_api_keys_paging_keeps_the_requested_order(root_client, paging_workspace_with_five_keys):
    workspace_id, created_ids = paging_workspace_with_five_keys
    pages = list_api_key_pages(root_client, workspace_id=workspace_id, max_results=2, order="DESC", order_by="apiKeyId")
    listed_ids = [api_key.api_key_id for page in pages for api_key in page.api_keys]
    assert listed_ids == sorted(created_ids, reverse=True)


# ---- UpdateApiKey, DisableApiKey, EnableApiKey, ResetApiKey, DeleteApiKey -----------------


def test_update_api_key_changes_description_and_auth(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("update"), all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))
    new_description = unique_description("updated")

    response = root_client.update_api_key(
        str(created.api_key_id),
        modelstudio_models.UpdateApiKeyRequest(
            description=new_description,
            auth=custom_auth(
                ["203.0.113.7", "2001:db8::/32"], ["qwen-max", "qwen-plus"],
                auth_class=modelstudio_models.UpdateApiKeyRequestAuth,
                scope_class=modelstudio_models.UpdateApiKeyRequestAuthModelAccessScope,
            ),
        ),
    )
    assert_successful_envelope(response)

    fetched = get_api_key(root_client, created.api_key_id)
    assert fetched.description == new_description
    assert fetched.auth.type == "Custom"
    assert fetched.auth.access_ips == ["203.0.113.7", "2001:db8::/32"]
    assert fetched.auth.model_access_scope.allow_all_models is False
    assert sorted(fetched.auth.model_access_scope.accessible_models) == ["qwen-max", "qwen-plus"]
    assert fetched.api_key_value == expected_masked_form(created.api_key_value), "editing keeps the secret"

    response = root_client.update_api_key(
        str(created.api_key_id),
        modelstudio_models.UpdateApiKeyRequest(auth=all_auth(modelstudio_models.UpdateApiKeyRequestAuth)),
    )
    assert_successful_envelope(response)
    fetched = get_api_key(root_client, created.api_key_id)
    assert fetched.auth.type == "All"
    assert fetched.description == new_description, "an update without description keeps it"


def test_disable_and_enable_api_key_flip_disabled(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("disable"), all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))

    assert_successful_envelope(
        root_client.disable_api_key(str(created.api_key_id), modelstudio_models.DisableApiKeyRequest())
    )
    assert get_api_key(root_client, created.api_key_id).disabled == 1
    listed = list_api_keys(root_client, api_key_id=created.api_key_id).api_keys
    assert [api_key.disabled for api_key in listed] == [1]

    assert_successful_envelope(
        root_client.enable_api_key(str(created.api_key_id), modelstudio_models.EnableApiKeyRequest())
    )
    assert get_api_key(root_client, created.api_key_id).disabled == 0


def test_reset_api_key_returns_new_plaintext_for_same_id(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("reset"), all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))

    response = root_client.reset_api_key(str(created.api_key_id), modelstudio_models.ResetApiKeyRequest())
    assert_successful_envelope(response)
    reset = response.body.api_key
    keygate_server.remember_secret(reset.api_key_value)

    assert reset.api_key_id == created.api_key_id
    assert reset.api_key_value != created.api_key_value
    assert SECURE_KEY_PATTERN.match(reset.api_key_value), reset.api_key_value
    assert reset.workspace_id == default_workspace_id
    assert get_api_key(root_client, created.api_key_id).api_key_value == expected_masked_form(reset.api_key_value)


def test_delete_api_key_then_get_answers_api_key_not_found(
        keygate_server, root_client, default_workspace_id):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("delete"), all_auth())

    assert_successful_envelope(root_client.delete_api_key(str(created.api_key_id)))

    with pytest.raises(ClientException) as raised:
        root_client.get_api_key(str(created.api_key_id))
    assert_client_exception(raised.value, 404, "ApiKey.NotFound")
    with pytest.raises(ClientException) as raised_again:
        root_client.delete_api_key(str(created.api_key_id))
    assert_client_exception(raised_again.value, 404, "ApiKey.NotFound")
    assert list_api_keys(root_client, api_key_id=created.api_key_id).api_keys == []


def test_raw_delete_of_missing_key_answers_json_error_envelope(keygate_server):
    session_token = keygate_server.log_in("root", keygate_server.root_password)
    status, headers, body = send_raw_request_with_headers(
        "DELETE",
        keygate_server.base_url(PRIMARY_REGION) + "/modelstudio/apikeys/987654321",
        headers={
            "x-acs-bearer-token": session_token,
            "x-acs-signature-type": "BEARERTOKEN",
            "x-acs-action": "DeleteApiKey",
            "x-acs-version": "2026-02-10",
            "accept": "application/json",
        },
    )
    assert status == 404, (status, body)
    assert "json" in (headers.get("content-type") or ""), headers.get("content-type")
    assert_error_envelope(json.loads(body), "ApiKey.NotFound")


# ---- workspaces ----------------------------------------------------------------------------


def test_list_workspaces_shows_the_default_workspace_of_each_region(
        root_client, root_client_in_classic_region, default_workspace_id_by_region):
    for region, client in ((PRIMARY_REGION, root_client), (CLASSIC_REGION, root_client_in_classic_region)):
        default_workspace_id = default_workspace_id_by_region[region]
        assert WORKSPACE_ID_PATTERN.match(default_workspace_id), default_workspace_id
        listed = [workspace for workspace in list_all_workspaces(client) if workspace.workspace_id == default_workspace_id]
        assert len(listed) == 1
        default_workspace = listed[0]
        assert isinstance(default_workspace.workspace_name, str) and default_workspace.workspace_name
        assert default_workspace.region == region
        assert is_plain_integer(default_workspace.gmt_create)
    assert default_workspace_id_by_region[PRIMARY_REGION] != default_workspace_id_by_region[CLASSIC_REGION]


def test_create_workspace_returns_workspace_with_id(root_client, default_workspace_id_by_region):
    workspace_name = unique_workspace_name("created")
    workspace = create_workspace(root_client, workspace_name)

    assert WORKSPACE_ID_PATTERN.match(workspace.workspace_id), workspace.workspace_id
    assert workspace.workspace_name == workspace_name
    assert workspace.region == PRIMARY_REGION
    assert_recent_epoch_milliseconds(workspace.gmt_create)

    by_id = list_all_workspaces(root_client, workspace_id=workspace.workspace_id)
    assert [listed.workspace_name for listed in by_id] == [workspace_name]
    by_name = list_all_workspaces(root_client, workspace_name=workspace_name)
    assert [listed.workspace_id for listed in by_name] == [workspace.workspace_id]


def test_delete_empty_sub_workspace_reports_is_deleted(root_client, default_workspace_id_by_region):
    workspace = create_workspace(root_client, unique_workspace_name("to-delete"))

    response = root_client.delete_workspace(workspace.workspace_id, modelstudio_models.DeleteWorkspaceRequest())
    assert_successful_envelope(response)
    assert response.body.is_deleted is True
    remaining_ids = {listed.workspace_id for listed in list_all_workspaces(root_client)}
    assert workspace.workspace_id not in remaining_ids


def test_delete_default_workspace_is_refused(root_client, default_workspace_id):
    # keygate answers like Model Studio does for a workspace that cannot go: HTTP 200,
    # success true, isDeleted false and the reasons (observed, then pinned here).
    response = root_client.delete_workspace(default_workspace_id, modelstudio_models.DeleteWorkspaceRequest())
    assert_successful_envelope(response)
    assert response.body.is_deleted is False, response.body.to_map()
    assert response.body.fail_reasons, response.body.to_map()
    for fail_reason in response.body.fail_reasons:
        assert isinstance(fail_reason.reason, str) and fail_reason.reason
        assert isinstance(fail_reason.resource_type, str) and fail_reason.resource_type
    remaining_ids = {listed.workspace_id for listed in list_all_workspaces(root_client)}
    assert default_workspace_id in remaining_ids


def test_delete_unknown_workspace_answers_workspace_not_found(root_client):
    with pytest.raises(ClientException) as raised:
        root_client.delete_workspace("llm-0000000000000000", modelstudio_models.DeleteWorkspaceRequest())
    assert_client_exception(raised.value, 404, "Workspace.NotFound")


# ---- model permissions ---------------------------------------------------------------------


def inference_permission_of(entries, model_name: str):
    matching = [entry for entry in entries if entry.model == model_name]
    if not matching:
        return None
    assert len(matching) == 1, [entry.to_map() for entry in matching]
    return matching[0].permissions.inference


def test_default_workspace_may_call_every_catalog_model(root_client, default_workspace_id):
    entries = list_all_model_permissions(root_client, default_workspace_id)
    assert entries, "the catalog is not empty"
    for entry in entries:
        assert isinstance(entry.model, str) and entry.model
        assert entry.permissions.inference is True, entry.to_map()
    assert inference_permission_of(entries, "qwen-plus") is True


def test_update_model_permissions_grants_inference_to_a_sub_workspace(
        keygate_server, root_client, default_workspace_id_by_region, api_keys_to_delete):
    workspace = create_workspace(root_client, unique_workspace_name("granted"))
    before = list_all_model_permissions(root_client, workspace.workspace_id)
    assert inference_permission_of(before, "qwen-plus") in (None, False), "a new sub-workspace has no grant"

    response = root_client.update_model_permissions(
        modelstudio_models.UpdateModelPermissionsRequest(
            workspace_id=workspace.workspace_id,
            models=[modelstudio_models.UpdateModelPermissionsRequestModels(model="qwen-plus", inference=True)],
        )
    )
    assert_successful_envelope(response)

    after = list_all_model_permissions(root_client, workspace.workspace_id)
    assert inference_permission_of(after, "qwen-plus") is True
    qwen_plus_entry = [entry for entry in after if entry.model == "qwen-plus"][0]
    assert isinstance(qwen_plus_entry.name, str) and qwen_plus_entry.name
    filtered = list_all_model_permissions(
        root_client, workspace.workspace_id,
        filter=modelstudio_models.ListModelPermissionsRequestFilter(model="qwen-plus"),
    )
    assert filtered and all("qwen-plus" in entry.model for entry in filtered), [e.to_map() for e in filtered]
    assert inference_permission_of(filtered, "qwen-plus") is True

    created = create_api_key(
        keygate_server, root_client, workspace.workspace_id, unique_description("granted workspace key"),
        custom_auth([], ["qwen-plus"]),
    )
    api_keys_to_delete.append((root_client, created.api_key_id))
    assert created.workspace_id == workspace.workspace_id
    fetched = get_api_key(root_client, created.api_key_id)
    assert fetched.workspace_id == workspace.workspace_id
    assert fetched.workspace_name == workspace.workspace_name
    assert fetched.auth.type == "Custom"
    assert fetched.auth.model_access_scope.accessible_models == ["qwen-plus"]


# ---- us-east-1: classic keys, no Custom, no Disable/Reset, 20 keys per creator -------------


def test_classic_region_creates_classic_format_keys(
        keygate_server, root_client_in_classic_region, default_workspace_id_by_region, api_keys_to_delete):
    client = root_client_in_classic_region
    workspace_id = default_workspace_id_by_region[CLASSIC_REGION]
    created = create_api_key(keygate_server, client, workspace_id, unique_description("classic"), all_auth())
    api_keys_to_delete.append((client, created.api_key_id))

    assert CLASSIC_KEY_PATTERN.match(created.api_key_value), created.api_key_value
    assert created.workspace_id == workspace_id
    fetched = get_api_key(client, created.api_key_id)
    assert fetched.api_key_value == expected_masked_form(created.api_key_value)
    assert fetched.auth.type == "All"


def test_classic_region_refuses_custom_auth_and_creates_nothing(
        keygate_server, root_client_in_classic_region, default_workspace_id_by_region):
    client = root_client_in_classic_region
    description = unique_description("classic custom")
    with pytest.raises(ClientException) as raised:
        create_api_key(
            keygate_server, client, default_workspace_id_by_region[CLASSIC_REGION], description,
            custom_auth(["10.0.0.0/8"], ["qwen-plus"]),
        )
    assert_client_exception(raised.value, 400)
    assert list_all_api_keys(client, description=description) == []


def test_classic_region_refuses_disable_and_reset(
        keygate_server, root_client_in_classic_region, default_workspace_id_by_region, api_keys_to_delete):
    client = root_client_in_classic_region
    created = create_api_key(
        keygate_server, client, default_workspace_id_by_region[CLASSIC_REGION], unique_description("classic no disable"),
        all_auth(),
    )
    api_keys_to_delete.append((client, created.api_key_id))

    with pytest.raises(ClientException) as disable_refused:
        client.disable_api_key(str(created.api_key_id), modelstudio_models.DisableApiKeyRequest())
    assert_client_exception(disable_refused.value, 400)
    with pytest.raises(ClientException) as reset_refused:
        client.reset_api_key(str(created.api_key_id), modelstudio_models.ResetApiKeyRequest())
    assert_client_exception(reset_refused.value, 400)

    fetched = get_api_key(client, created.api_key_id)
    assert fetched.disabled == 0
    assert fetched.api_key_value == expected_masked_form(created.api_key_value), "the refused reset changed nothing"


def test_classic_region_key_is_not_visible_from_the_primary_region(
        keygate_server, root_client, root_client_in_classic_region, default_workspace_id_by_region, api_keys_to_delete):
    created = create_api_key(
        keygate_server, root_client_in_classic_region, default_workspace_id_by_region[CLASSIC_REGION],
        unique_description("classic only"), all_auth(),
    )
    api_keys_to_delete.append((root_client_in_classic_region, created.api_key_id))

    with pytest.raises(ClientException) as raised:
        root_client.get_api_key(str(created.api_key_id))
    assert_client_exception(raised.value, 404, "ApiKey.NotFound")
    assert list_api_keys(root_client, api_key_id=created.api_key_id).api_keys == []


def test_classic_region_limit_is_twenty_keys_per_creator(
        keygate_server, alice_access_key, root_client_in_classic_region, default_workspace_id_by_region,
        api_keys_to_delete):
    alice_in_classic_region = keygate_server.signed_client(CLASSIC_REGION, alice_access_key)
    workspace_id = default_workspace_id_by_region[CLASSIC_REGION]
    n_existing = len(list_all_api_keys(alice_in_classic_region))
    alice_key_ids = []
    for index in range(CLASSIC_REGION_KEY_LIMIT_PER_CREATOR - n_existing):
        created = create_api_key(keygate_server, alice_in_classic_region, workspace_id, unique_description(f"quota {index}"))
        api_keys_to_delete.append((alice_in_classic_region, created.api_key_id))
        alice_key_ids.append(created.api_key_id)

    with pytest.raises(ClientException) as raised:
        create_api_key(keygate_server, alice_in_classic_region, workspace_id, unique_description("quota over"))
    assert_client_exception(raised.value, 400, "QuotaExceeded.ApiKey")

    # Counted per creator: root still has room in us-east-1.
    root_key = create_api_key(keygate_server, root_client_in_classic_region, workspace_id, unique_description("quota root"))
    api_keys_to_delete.append((root_client_in_classic_region, root_key.api_key_id))

    # Deleted keys do not count.
    assert_successful_envelope(alice_in_classic_region.delete_api_key(str(alice_key_ids[0])))
    again = create_api_key(keygate_server, alice_in_classic_region, workspace_id, unique_description("quota again"))
    api_keys_to_delete.append((alice_in_classic_region, again.api_key_id))


# ---- RAM users -----------------------------------------------------------------------------


def test_key_manager_sees_only_own_keys(
        keygate_server, root_client, alice_client, default_workspace_id, api_keys_to_delete):
    root_key = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("root own"), all_auth())
    api_keys_to_delete.append((root_client, root_key.api_key_id))
    alice_key = create_api_key(keygate_server, alice_client, default_workspace_id, unique_description("alice own"), all_auth())
    api_keys_to_delete.append((alice_client, alice_key.api_key_id))
    assert alice_key.created_by == "alice"

    seen_by_alice = list_all_api_keys(alice_client)
    assert alice_key.api_key_id in {api_key.api_key_id for api_key in seen_by_alice}
    assert root_key.api_key_id not in {api_key.api_key_id for api_key in seen_by_alice}
    assert all(api_key.created_by == "alice" for api_key in seen_by_alice)

    # The account sees every key of the account.
    seen_by_root = list_api_keys(root_client, api_key_id=alice_key.api_key_id).api_keys
    assert [api_key.created_by for api_key in seen_by_root] == ["alice"]

    # Another's key is 404, never 403, whatever the operation.
    with pytest.raises(ClientException) as get_refused:
        alice_client.get_api_key(str(root_key.api_key_id))
    assert_client_exception(get_refused.value, 404, "ApiKey.NotFound")
    with pytest.raises(ClientException) as disable_refused:
        alice_client.disable_api_key(str(root_key.api_key_id), modelstudio_models.DisableApiKeyRequest())
    assert_client_exception(disable_refused.value, 404, "ApiKey.NotFound")
    with pytest.raises(ClientException) as delete_refused:
        alice_client.delete_api_key(str(root_key.api_key_id))
    assert_client_exception(delete_refused.value, 404, "ApiKey.NotFound")
    assert list_api_keys(alice_client, api_key_id=root_key.api_key_id).api_keys == []
    assert get_api_key(root_client, root_key.api_key_id).disabled == 0, "alice's refused calls changed nothing"


def test_member_cannot_create_api_key(keygate_server, member_client, root_client, default_workspace_id):
    description = unique_description("member create")
    with pytest.raises(ClientException) as raised:
        create_api_key(keygate_server, member_client, default_workspace_id, description, all_auth())
    assert_client_exception(raised.value, 403, "Forbidden")
    assert list_all_api_keys(root_client, description=description) == []


# ---- bearer sessions -----------------------------------------------------------------------


def test_session_bearer_token_can_list_api_keys(
        keygate_server, root_client, default_workspace_id, api_keys_to_delete):
    created = create_api_key(keygate_server, root_client, default_workspace_id, unique_description("bearer"), all_auth())
    api_keys_to_delete.append((root_client, created.api_key_id))
    session_token = keygate_server.log_in("root", keygate_server.root_password)
    bearer_client = keygate_server.bearer_client(PRIMARY_REGION, session_token)

    listed = list_api_keys(bearer_client, api_key_id=created.api_key_id)
    assert [api_key.api_key_id for api_key in listed.api_keys] == [created.api_key_id]
    assert listed.api_keys[0].api_key_value == expected_masked_form(created.api_key_value)


def test_unknown_bearer_token_is_refused(keygate_server):
    bearer_client = keygate_server.bearer_client(PRIMARY_REGION, "not-a-session-" + uuid.uuid4().hex)
    with pytest.raises(ClientException) as raised:
        bearer_client.list_api_keys(modelstudio_models.ListApiKeysRequest())
    assert 400 <= raised.value.status_code < 500
    assert_client_exception(raised.value, raised.value.status_code)


def test_wrong_password_login_is_refused(keygate_server):
    status, body = send_raw_request(
        "POST",
        keygate_server.base_url(PRIMARY_REGION) + "/keygate/v1/sessions",
        headers={"content-type": "application/json"},
        body=json.dumps({"account": "root", "password": "wrong-" + uuid.uuid4().hex}).encode(),
    )
    assert status in (400, 401, 403), (status, body)
    assert "token" not in json.loads(body), body
