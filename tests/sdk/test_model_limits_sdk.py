"""UpdateModelLimits and ListModelLimits through the official SDK
(alibabacloud_modelstudio20260210 2.2.3; docs/CONTRACT.md#model-limits), and the limits'
429 as each data-plane SDK raises or returns it:

- a keygate of this file's own whose settings give demo-embed a platform default
  (`[[model_limits]]`), so that `modelLimit` is parsed with every field;
- set, OVERLAY (merge), DELETE and the listing of a sub-workspace's limits beside the
  default; a bad item is 400 InvalidParameter and nothing of its batch is applied; a
  key-manager may not change limits (403);
- a request limit of 1 a day on demo-echo in that sub-workspace: the first call is served
  with the `x-ratelimit-*` headers, then `openai` raises RateLimitError (`limit_requests`),
  `anthropic` RateLimitError (`rate_limit_error`) and `dashscope` answers 429
  `Throttling.RateQuota`, each with Retry-After; a token limit of 0 is
  `Throttling.AllocationQuota` / `insufficient_quota`. Every SDK has its retries off,
  except in the test of retries: `openai` and `anthropic` wait the Retry-After that keygate
  sends (not their own shorter back-off) and their retry is served in the next window.
"""

from __future__ import annotations

import json
import time
import uuid
from http import HTTPStatus

import anthropic
import dashscope
import httpx
import openai
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_tea_openapi.exceptions import ClientException

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    PRIMARY_REGION,
    KeygateServer,
    assert_client_exception,
    assert_successful_envelope,
    create_api_key,
)

DEFAULT_LIMIT = {"request_limit": 600, "request_limit_period": 60, "usage_limit": 1000000, "usage_limit_period": 60}
DAY = 86400


@pytest.fixture(scope="module")
def limits_server(keygate_binary, tmp_path_factory) -> KeygateServer:
    config_path = tmp_path_factory.mktemp("limits-config") / "keygate.toml"
    config_path.write_text(
        f"""# Written by tests/sdk/test_model_limits_sdk.py for its own keygate.
demo_upstream = true

[[model_limits]]
model = "{DEMO_EMBEDDING_MODEL}"
request_limit = {DEFAULT_LIMIT["request_limit"]}
request_limit_period_seconds = {DEFAULT_LIMIT["request_limit_period"]}
usage_limit = {DEFAULT_LIMIT["usage_limit"]}
usage_limit_period_seconds = {DEFAULT_LIMIT["usage_limit_period"]}
""",
        encoding="utf-8",
    )
    server = KeygateServer(keygate_binary, tmp_path_factory.mktemp("limits-data"), config_path)
    server.access_key_by_owner["root"] = server.create_access_key()
    server.create_user("kim", "key-manager")
    server.access_key_by_owner["kim"] = server.create_access_key("kim")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def root(limits_server):
    return limits_server.signed_client(PRIMARY_REGION, limits_server.access_key_by_owner["root"])


@pytest.fixture(scope="module")
def workspace(limits_server, root):
    """A sub-workspace granted demo-echo and demo-embed, and an All key of it: (id, key)."""
    return new_workspace(limits_server, root)


def new_workspace(limits_server, root):
    created = root.create_workspace(modelstudio_models.CreateWorkspaceRequest(workspace_name="limits-" + uuid.uuid4().hex[:8]))
    assert_successful_envelope(created)
    workspace_id = created.body.workspace.workspace_id
    granted = root.update_model_permissions(modelstudio_models.UpdateModelPermissionsRequest(
        workspace_id=workspace_id,
        models=[modelstudio_models.UpdateModelPermissionsRequestModels(model=model, inference=True)
                for model in (DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL)],
    ))
    assert_successful_envelope(granted)
    key = create_api_key(limits_server, root, workspace_id, "model limits")
    return workspace_id, key.api_key_value


def change(model: str, **fields):
    return modelstudio_models.UpdateModelLimitsRequestWorkspaceLimits(model=model, **fields)


def update_limits(client, workspace_id: str, *changes):
    return client.update_model_limits(
        modelstudio_models.UpdateModelLimitsRequest(workspace_id=workspace_id, workspace_limits=list(changes)))


def limits_by_model(client, workspace_id: str) -> dict:
    response = client.list_model_limits(modelstudio_models.ListModelLimitsRequest(workspace_id=workspace_id, max_results=200))
    assert_successful_envelope(response)
    assert response.body.total_count == len(response.body.limits) and response.body.next_token == ""
    return {item.model: item for item in response.body.limits}


def values(limit) -> dict | None:
    if limit is None:
        return None
    return {name: value for name, value in limit.to_map().items() if value is not None}


def test_limits_are_set_overlaid_deleted_and_listed_beside_the_default(root, workspace):
    workspace_id, _ = workspace
    before = limits_by_model(root, workspace_id)
    assert set(before) == {DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL}
    embed = before[DEMO_EMBEDDING_MODEL]
    assert (embed.workspace_id, embed.name, embed.workspace_limit) == (workspace_id, "Demo embeddings (built-in demo upstream)", None)
    assert values(embed.model_limit) == {"requestLimit": 600, "requestLimitPeriod": 60, "usageLimit": 1000000,
                                         "usageLimitField": "total_tokens", "usageLimitPeriod": 60}
    assert before[DEMO_CHAT_MODEL].model_limit is None

    assert_successful_envelope(update_limits(root, workspace_id, change(
        DEMO_EMBEDDING_MODEL, operation_type="OVERLAY", request_limit=60, request_limit_period=60, usage_limit=5000, usage_limit_period=60)))
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_EMBEDDING_MODEL, usage_limit=7000)))
    assert values(limits_by_model(root, workspace_id)[DEMO_EMBEDDING_MODEL].workspace_limit) == {
        "requestLimit": 60, "requestLimitPeriod": 60, "usageLimit": 7000, "usageLimitField": "total_tokens", "usageLimitPeriod": 60}
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_EMBEDDING_MODEL, operation_type="DELETE")))
    assert limits_by_model(root, workspace_id)[DEMO_EMBEDDING_MODEL].workspace_limit is None


def test_bad_items_are_refused_and_nothing_of_their_batch_is_applied(root, workspace, limits_server):
    workspace_id, _ = workspace
    good = change(DEMO_EMBEDDING_MODEL, request_limit=1, request_limit_period=60)
    for bad in (change(DEMO_CHAT_MODEL, operation_type="DELETE", request_limit=1),
                change(DEMO_CHAT_MODEL, request_limit=1, request_limit_period=0),
                change(DEMO_CHAT_MODEL, usage_limit=-1, usage_limit_period=60),
                change("no-such-model", request_limit=1, request_limit_period=60)):
        with pytest.raises(ClientException) as raised:
            update_limits(root, workspace_id, good, bad)
        assert_client_exception(raised.value, 400, "InvalidParameter")
    assert limits_by_model(root, workspace_id)[DEMO_EMBEDDING_MODEL].workspace_limit is None
    kim = limits_server.signed_client(PRIMARY_REGION, limits_server.access_key_by_owner["kim"])
    with pytest.raises(ClientException) as raised:
        update_limits(kim, workspace_id, good)
    assert_client_exception(raised.value, 403, "Forbidden")


def openai_client(server: KeygateServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url(PRIMARY_REGION)}/compatible-mode/v1", api_key=key, max_retries=0, timeout=30)


def anthropic_client(server: KeygateServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{server.base_url(PRIMARY_REGION)}/apps/anthropic", api_key=key, max_retries=0, timeout=30)


def dashscope_call(server: KeygateServer, key: str, model: str):
    previous = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{server.base_url(PRIMARY_REGION)}/api/v1"
    try:
        return dashscope.Generation.call(model=model, prompt="hello limits", api_key=key)
    finally:
        dashscope.base_http_api_url = previous


def assert_retry_after(headers) -> None:
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= DAY, retry_after


def test_a_request_limit_is_a_429_in_every_sdk(root, workspace, limits_server):
    workspace_id, key = workspace
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_CHAT_MODEL, request_limit=1, request_limit_period=DAY)))
    served = openai_client(limits_server, key).chat.completions.with_raw_response.create(
        model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "hello limits"}])
    assert (served.headers["x-ratelimit-limit-requests"], served.headers["x-ratelimit-remaining-requests"]) == ("1", "0")
    assert served.headers["x-ratelimit-reset-requests"].endswith("s")

    with pytest.raises(openai.RateLimitError) as raised:
        openai_client(limits_server, key).chat.completions.create(
            model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "hello limits"}])
    assert raised.value.status_code == 429 and raised.value.code == "limit_requests" and raised.value.type == "limit_requests"
    assert_retry_after(raised.value.response.headers)

    with pytest.raises(anthropic.RateLimitError) as raised:
        anthropic_client(limits_server, key).messages.create(
            model=DEMO_CHAT_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello limits"}])
    assert raised.value.status_code == 429 and raised.value.body["error"]["type"] == "rate_limit_error"
    assert_retry_after(raised.value.response.headers)

    response = dashscope_call(limits_server, key, DEMO_CHAT_MODEL)
    assert (response.status_code, response.code) == (HTTPStatus.TOO_MANY_REQUESTS, "Throttling.RateQuota"), response
    assert response.message and response.request_id


def test_a_token_limit_is_a_429_in_every_sdk(root, workspace, limits_server):
    workspace_id, key = workspace
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_EMBEDDING_MODEL, usage_limit=0, usage_limit_period=DAY)))
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client(limits_server, key).embeddings.create(model=DEMO_EMBEDDING_MODEL, input=["hello limits"])
    assert raised.value.code == "insufficient_quota"
    assert raised.value.response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert_retry_after(raised.value.response.headers)
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client(limits_server, key).messages.create(
            model=DEMO_EMBEDDING_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello limits"}])
    response = dashscope_call(limits_server, key, DEMO_EMBEDDING_MODEL)
    assert (response.status_code, response.code) == (HTTPStatus.TOO_MANY_REQUESTS, "Throttling.AllocationQuota"), response
    # Deleting the limit frees the model at once.
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_EMBEDDING_MODEL, operation_type="DELETE")))
    assert len(openai_client(limits_server, key).embeddings.create(model=DEMO_EMBEDDING_MODEL, input=["hello"]).data) == 1


def test_the_sdk_sends_workspace_limits_as_one_json_parameter(root, workspace):
    """The SDK's shrink style: the list as one compact JSON document (checked here by
    sending it through the SDK's own request and reading back what keygate stored)."""
    workspace_id, _ = workspace
    request = modelstudio_models.UpdateModelLimitsRequest(
        workspace_id=workspace_id, workspace_limits=[change(DEMO_CHAT_MODEL, operation_type="DELETE")])
    assert json.loads(json.dumps(request.to_map()["workspaceLimits"])) == [{"model": DEMO_CHAT_MODEL, "operationType": "DELETE"}]
    assert_successful_envelope(root.update_model_limits(request))
    assert limits_by_model(root, workspace_id)[DEMO_CHAT_MODEL].workspace_limit is None


class AttemptLog:
    """An httpx event hook pair that records when each attempt was sent and each answer's
    status and Retry-After: what an SDK's retry loop did, seen from the wire."""

    def __init__(self):
        self.sent_at: list[float] = []
        self.answers: list[tuple[int, str | None]] = []

    def http_client(self, http_library=httpx):
        """A client of `http_library`: `httpx`, or the `httpx2` fork that the anthropic SDK
        requires."""
        return http_library.Client(event_hooks={"request": [self.on_request], "response": [self.on_response]})

    def on_request(self, request) -> None:
        self.sent_at.append(time.monotonic())

    def on_response(self, response) -> None:
        self.answers.append((response.status_code, response.headers.get("retry-after")))


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_sdks_retry_after_the_retry_after_that_keygate_sends(root, limits_server, sdk):
    """A request limit of 1 per 2 seconds: the second call is refused with Retry-After (1 or
    2 seconds, to the window's end); the SDK, with one retry allowed, waits that long (its
    own back-off would wait under a second and land in the same window) and the retry is
    served."""
    workspace_id, key = new_workspace(limits_server, root)
    assert_successful_envelope(update_limits(root, workspace_id, change(DEMO_CHAT_MODEL, request_limit=1, request_limit_period=2)))
    attempts = AttemptLog()
    base_url = limits_server.base_url(PRIMARY_REGION)
    if sdk == "openai":
        client = openai.OpenAI(base_url=f"{base_url}/compatible-mode/v1", api_key=key, max_retries=1, timeout=30,
                               http_client=attempts.http_client())
        call = lambda: client.chat.completions.create(model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": "hello"}])
    else:
        import httpx2

        client = anthropic.Anthropic(base_url=f"{base_url}/apps/anthropic", api_key=key, max_retries=1, timeout=30,
                                     http_client=attempts.http_client(httpx2))
        call = lambda: client.messages.create(model=DEMO_CHAT_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello"}])
    # Until a first call is refused (the window may turn between two calls), then its retry.
    for _ in range(5):
        attempts.sent_at.clear()
        attempts.answers.clear()
        call()
        if len(attempts.answers) == 2:
            break
    assert [status for status, _ in attempts.answers] == [429, 200], attempts.answers
    retry_after = int(attempts.answers[0][1])
    assert retry_after in (1, 2)
    waited = attempts.sent_at[1] - attempts.sent_at[0]
    assert waited >= retry_after - 0.05, (waited, retry_after)
