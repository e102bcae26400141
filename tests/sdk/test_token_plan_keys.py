"""Token Plan / Coding Plan keys (docs/CONTRACT.md#token-plan) through the official SDKs:

- CreateTokenPlanKey and RotateTokenPlanKey with `alibabacloud-modelstudio20260210` (its
  PascalCase `Data`), errors read by the SDK from keygate's PascalCase error body;
- the `sk-sp-` key used with the `openai` SDK on the plan listener's `/v1` and the
  `anthropic` SDK on its `/apps/anthropic`, as Coding Plan tools are configured;
- the wall between the two kinds: the plan key is refused on the ordinary listener, and an
  ordinary key on the plan listener, each with the SDK's AuthenticationError.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_tea_openapi.exceptions import ClientException

from keygate_harness import DEMO_CHAT_MODEL, PRIMARY_REGION, delete_api_key_quietly

PROMPT = "plan key says hello"


def openai_client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)


def anthropic_client(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=30)


def chat_reply(client: openai.OpenAI) -> str:
    completion = client.chat.completions.create(model=DEMO_CHAT_MODEL, messages=[{"role": "user", "content": PROMPT}])
    return completion.choices[0].message.content


@pytest.fixture
def plan_key(keygate_server, root_client):
    """A plan key held by the account, created with CreateTokenPlanKey; deleted afterwards
    (each holder has one plan key per region)."""
    response = root_client.create_token_plan_key(
        modelstudio_models.CreateTokenPlanKeyRequest(account_id="root", description="coding plan")
    )
    assert response.status_code == 200
    body = response.body
    assert body.success is True and body.code == "Success", body.to_map()
    keygate_server.remember_secret(body.data.plain_api_key)
    yield body.data
    delete_api_key_quietly(root_client, int(body.data.api_key_id))


def test_create_token_plan_key_answers_the_pascal_case_data(plan_key):
    assert plan_key.plain_api_key.startswith("sk-sp-")
    assert isinstance(plan_key.api_key_id, str) and plan_key.api_key_id.isdigit()
    assert plan_key.masked_api_key.startswith("sk-sp-") and "****" in plan_key.masked_api_key
    assert plan_key.plain_api_key not in plan_key.masked_api_key
    assert plan_key.description == "coding plan"
    assert plan_key.source_id and plan_key.created_at.endswith("Z")


def test_the_plan_key_calls_models_on_the_plan_listener_with_the_openai_and_anthropic_sdks(keygate_server, plan_key):
    plan_url = keygate_server.plan_base_url()
    assert PROMPT in chat_reply(openai_client(plan_url + "/v1", plan_key.plain_api_key))
    message = anthropic_client(plan_url + "/apps/anthropic", plan_key.plain_api_key).messages.create(
        model=DEMO_CHAT_MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}],
    )
    assert PROMPT in message.content[0].text


def test_plan_and_ordinary_keys_are_each_refused_on_the_other_listener(keygate_server, plan_key, api_key_with_all_permissions):
    ordinary_url = keygate_server.base_url(PRIMARY_REGION)
    with pytest.raises(openai.AuthenticationError) as refused:
        chat_reply(openai_client(ordinary_url + "/compatible-mode/v1", plan_key.plain_api_key))
    assert "only on the plan endpoint" in str(refused.value)
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(ordinary_url + "/apps/anthropic", plan_key.plain_api_key).messages.create(
            model=DEMO_CHAT_MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}],
        )
    with pytest.raises(openai.AuthenticationError) as refused:
        chat_reply(openai_client(keygate_server.plan_base_url() + "/v1", api_key_with_all_permissions))
    assert "accepts only Token Plan and Coding Plan keys" in str(refused.value)


def test_rotate_token_plan_key_replaces_the_secret_at_once(keygate_server, root_client, plan_key):
    response = root_client.rotate_token_plan_key(
        modelstudio_models.RotateTokenPlanKeyRequest(api_key_id=plan_key.api_key_id)
    )
    assert response.body.success is True, response.body.to_map()
    rotated = response.body.data
    keygate_server.remember_secret(rotated.plain_api_key)
    assert rotated.api_key_id == plan_key.api_key_id
    assert rotated.plain_api_key.startswith("sk-sp-") and rotated.plain_api_key != plan_key.plain_api_key
    assert rotated.reset_at.endswith("Z")
    plan_v1 = keygate_server.plan_base_url() + "/v1"
    assert PROMPT in chat_reply(openai_client(plan_v1, rotated.plain_api_key))
    with pytest.raises(openai.AuthenticationError):
        chat_reply(openai_client(plan_v1, plan_key.plain_api_key))


def test_token_plan_errors_reach_the_sdk_with_their_code(root_client, plan_key):
    with pytest.raises(ClientException) as refused:
        root_client.create_token_plan_key(modelstudio_models.CreateTokenPlanKeyRequest(account_id="root"))
    assert refused.value.status_code == 400
    assert refused.value.code == "QuotaExceeded.TokenPlanKey"
    assert "RotateTokenPlanKey" in refused.value.message
    with pytest.raises(ClientException) as missing:
        root_client.rotate_token_plan_key(modelstudio_models.RotateTokenPlanKeyRequest(api_key_id="999999"))
    assert (missing.value.status_code, missing.value.code) == (404, "ApiKey.NotFound")
    assert missing.value.request_id
