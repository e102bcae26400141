"""ListModels, GetBillingOverview and GetBillingTrend through the official SDK
(alibabacloud_modelstudio20260210 2.2.3; docs/CONTRACT.md#billing), on usage made by real
model calls through keygate's gateway:

- a keygate of this file's own (priced models, a 200 ms usage flush, and nobody else's
  calls, so that every total is known), whose `double-*` models go to the suite's upstream
  test double (fixed usage: 3 input and 5 output tokens per chat) and whose demo models
  report their words as tokens;
- root's keys in the default workspace and in a sub-workspace, and a key of `alice` (a
  key-manager RAM user), used with the `openai` and `dashscope` SDKs; `bob` (a member) has
  no key;
- every field of the SDK's response models is parsed (nothing left `None`), for every
  group-by code keygate records (API_KEY_ID, BASE_MODEL, WORKSPACE_ID, MAAS_TYPE, FEE_TYPE,
  CHARGE_TYPE) and both granularities; the codes keygate does not record are refused with
  400 InvalidParameter; IN and NOT filters, top N (with the trend's others group) and
  zeroFilter; every amount is the price table times the tokens the calls reported;
- the visibility matrix: the account sees every key's usage, alice only her key's, bob none.
"""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

import dashscope
import openai
import pytest
from alibabacloud_modelstudio20260210 import models as modelstudio_models
from alibabacloud_tea_openapi.exceptions import ClientException
from darabonba.model import DaraModel

from keygate_harness import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    DOUBLE_CHAT_MODEL,
    DOUBLE_EMBEDDING_MODEL,
    PRIMARY_REGION,
    UPSTREAM_CREDENTIAL_VARIABLE,
    KeygateServer,
    assert_client_exception,
    assert_successful_envelope,
    create_api_key,
)

# Per million tokens, in USD: (input, output). double-embed has no price (it costs 0).
PRICES = {
    DOUBLE_CHAT_MODEL: (2000, 6000),
    DEMO_CHAT_MODEL: (1000, 3000),
    DEMO_EMBEDDING_MODEL: (500, 0),
}
CURRENCY = "USD"
USAGE_FLUSH_INTERVAL_MILLISECONDS = 200
# What the upstream double reports for one chat call, in both protocols it is called in here.
DOUBLE_CHAT_USAGE = (3, 5)
DEMO_REPLY_PREFIX_WORDS = len("[keygate demo] echo:".split())
NULL_VALUE = "DIMENSION_FILTER_NULL_VALUE"
OTHERS_VALUE = "DIMENSION_GROUP_OTHERS_VALUE"
# The codes of the reference keygate records, and those it refuses (it does not record them).
RECORDED_CODES = ["API_KEY_ID", "BASE_MODEL", "WORKSPACE_ID", "MAAS_TYPE", "FEE_TYPE", "CHARGE_TYPE"]
UNRECORDED_CODES = ["BUSINESS_REGION", "SERVICE_SITE", "ARTICLE_CODE"]
# The value of the dimensions keygate does not vary, and their names.
CONSTANT_VALUE = {"MAAS_TYPE": "inference", "FEE_TYPE": "billing", "CHARGE_TYPE": "postpaid"}
CONSTANT_NAME = {"MAAS_TYPE": "Model inference", "FEE_TYPE": "Billing", "CHARGE_TYPE": "Pay-as-you-go"}
DEMO_DISPLAY_NAME = {
    DEMO_CHAT_MODEL: "Demo echo (built-in demo upstream)",
    DEMO_EMBEDDING_MODEL: "Demo embeddings (built-in demo upstream)",
}


# ---- amounts, as keygate computes and writes them ---------------------------------------------


def cost_micros(model: str, input_tokens: int, output_tokens: int) -> int:
    """Millionths of a USD: tokens times the price per million tokens (exact here)."""
    input_price, output_price = PRICES.get(model, (0, 0))
    return input_tokens * input_price + output_tokens * output_price


def amount_text(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ratio_text(part: int, whole: int) -> str:
    """`part / whole` with four decimals, rounded half up once; "0.0000" of nothing."""
    if whole == 0:
        return "0.0000"
    ten_thousandths = (2 * part * 10_000 + whole) // (2 * whole)
    return f"{ten_thousandths // 10_000}.{ten_thousandths % 10_000:04d}"


# ---- what the calls cost ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    key_id: str
    workspace_id: str
    model: str
    input_tokens: int
    output_tokens: int

    @property
    def micros(self) -> int:
        return cost_micros(self.model, self.input_tokens, self.output_tokens)

    def value_of(self, code: str) -> str:
        return {
            "API_KEY_ID": self.key_id,
            "BASE_MODEL": self.model,
            "WORKSPACE_ID": self.workspace_id,
        }.get(code) or CONSTANT_VALUE[code]


@dataclass
class Scene:
    """The usage made through the gateway, and who made it."""

    server: KeygateServer
    root_client: object
    alice_client: object
    bob_client: object
    default_workspace_id: str
    sub_workspace_id: str
    root_key_id: str
    root_sub_key_id: str
    alice_key_id: str
    # The UTC day of every call.
    day: datetime.date
    calls: list[Call] = field(default_factory=list)

    def calls_of(self, key_ids) -> list[Call]:
        return [call for call in self.calls if call.key_id in key_ids]

    @property
    def all_key_ids(self) -> set[str]:
        return {self.root_key_id, self.root_sub_key_id, self.alice_key_id}


def expected_groups(calls: list[Call], code: str) -> dict[str, int]:
    """Cost per group key, zero groups included."""
    amounts: dict[str, int] = {}
    for call in calls:
        key = call.value_of(code)
        amounts[key] = amounts.get(key, 0) + call.micros
    return amounts


def ranked(amounts: dict[str, int], drop_zero: bool = True) -> list[tuple[str, int]]:
    """Largest first, ties by key; zero groups dropped when asked."""
    groups = [(key, micros) for key, micros in amounts.items() if not (drop_zero and micros == 0)]
    return sorted(groups, key=lambda group: (-group[1], group[0]))


def expected_name(code: str, key: str) -> str:
    if code == "BASE_MODEL":
        return DEMO_DISPLAY_NAME.get(key, key)
    if code in CONSTANT_NAME:
        return CONSTANT_NAME[code]
    return key


# ---- the SDK's responses -------------------------------------------------------------------------


def assert_every_field_parsed(model: DaraModel, path: str = "body") -> None:
    """No attribute of the SDK's model (nested models and list items included) is None:
    keygate sent every field the SDK declares, under the name the SDK reads."""
    assert isinstance(model, DaraModel), (path, model)
    for name, value in vars(model).items():
        if name.startswith("_"):
            continue
        assert value is not None, f"{path}.{name} was not parsed: {model.to_map()}"
        if isinstance(value, DaraModel):
            assert_every_field_parsed(value, f"{path}.{name}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                assert item is not None, f"{path}.{name}[{index}] is None"
                if isinstance(item, DaraModel):
                    assert_every_field_parsed(item, f"{path}.{name}[{index}]")


def assert_billing_envelope(response) -> None:
    """The billing operations declare `message`, not `httpStatusCode`."""
    assert response.status_code == HTTPStatus.OK, response.status_code
    body = response.body
    assert body.success is True, body.to_map()
    assert isinstance(body.request_id, str) and body.request_id, body.to_map()
    assert isinstance(body.code, str) and body.code, body.to_map()
    assert isinstance(body.message, str), body.to_map()
    assert_every_field_parsed(body)


def dimension_filters(request_class_prefix: str, dimensions):
    """`filter` of a request: [(code, selectType, values)]."""
    if dimensions is None:
        return None
    filter_class = getattr(modelstudio_models, f"{request_class_prefix}Filter")
    dimension_class = getattr(modelstudio_models, f"{request_class_prefix}FilterDimensions")
    return filter_class(dimensions=[
        dimension_class(code=code, select_type=select_type, values=list(values)) for code, select_type, values in dimensions
    ])


def overview_request(bill_month: str, code: str, dimensions=None, **options):
    return modelstudio_models.GetBillingOverviewRequest(
        bill_month=bill_month,
        group_by=[modelstudio_models.GetBillingOverviewRequestGroupBy(code=code)],
        filter=dimension_filters("GetBillingOverviewRequest", dimensions),
        **options,
    )


def trend_request(granularity: str, start: datetime.date, end: datetime.date, code: str, dimensions=None, **options):
    return modelstudio_models.GetBillingTrendRequest(
        granularity=granularity,
        time_period=modelstudio_models.GetBillingTrendRequestTimePeriod(start=start.isoformat(), end=end.isoformat()),
        group_by=[modelstudio_models.GetBillingTrendRequestGroupBy(code=code)],
        filter=dimension_filters("GetBillingTrendRequest", dimensions),
        **options,
    )


def get_overview(client, bill_month: str, code: str, dimensions=None, **options):
    response = client.get_billing_overview(overview_request(bill_month, code, dimensions, **options))
    assert_billing_envelope(response)
    return response.body.data


def get_trend(client, granularity: str, start: datetime.date, end: datetime.date, code: str, dimensions=None, **options):
    response = client.get_billing_trend(trend_request(granularity, start, end, code, dimensions, **options))
    assert_billing_envelope(response)
    return response.body.data


def overview_rows(data) -> list[tuple[str, str, str, str]]:
    return [(group.key, group.name, group.amount, group.percentage) for group in data.groups]


def expected_overview_rows(code: str, amounts: list[tuple[str, int]]) -> list[tuple[str, str, str, str]]:
    top_sum = sum(micros for _, micros in amounts)
    return [(key, expected_name(code, key), amount_text(micros), ratio_text(micros, top_sum)) for key, micros in amounts]


def assert_overview(data, code: str, calls: list[Call], top: int = 20, drop_zero: bool = True) -> None:
    """The overview of `calls` grouped by `code`: totals, top groups and percentages."""
    total = sum(call.micros for call in calls)
    assert data.currency == CURRENCY
    assert (data.total_amount, data.pretax_amount, data.tax_amount) == (amount_text(total), amount_text(total), "0.000000")
    amounts = ranked(expected_groups(calls, code), drop_zero)[:top]
    assert overview_rows(data) == expected_overview_rows(code, amounts), data.to_map()
    assert all(group.article_codes == [] for group in data.groups), data.to_map()


def assert_cost(cost, micros: int) -> None:
    assert (cost.amount, cost.pretax_amount, cost.tax_amount, cost.currency) == (
        amount_text(micros), amount_text(micros), "0.000000", CURRENCY), cost.to_map()


def assert_trend(data, code: str, calls: list[Call], period: str, top: int = 20, drop_zero: bool = True) -> None:
    """The trend of `calls` (all in one period) grouped by `code`."""
    total = sum(call.micros for call in calls)
    assert_cost(data.cost_totals, total)
    groups = ranked(expected_groups(calls, code), drop_zero)
    kept, rest = groups[:top], groups[top:]
    others = sum(micros for _, micros in rest)
    expected_totals = [(key, expected_name(code, key), micros) for key, micros in kept]
    if rest and not (drop_zero and others == 0):
        expected_totals.append((OTHERS_VALUE, "Others", others))
    assert [(group.key, group.name, group.amount, group.pretax_amount, group.tax_amount) for group in data.group_by_total] == [
        (key, name, amount_text(micros), amount_text(micros), "0.000000") for key, name, micros in expected_totals
    ], data.to_map()
    if not calls:
        assert data.result_by_time == [], data.to_map()
        return
    [only_period] = data.result_by_time
    assert only_period.period == period
    assert_cost(only_period.total, total)
    details = sorted(expected_totals, key=lambda group: (-group[2], group[0]))
    assert [
        (detail.key, detail.name, detail.amount, detail.pretax_amount, detail.tax_amount, detail.percentage)
        for detail in only_period.period_details
    ] == [
        (key, name, amount_text(micros), amount_text(micros), "0.000000", ratio_text(micros, total))
        for key, name, micros in details
    ], data.to_map()


# ---- the server and the usage --------------------------------------------------------------------


def write_billing_config(config_path, upstream_double_base_url: str):
    prices = "".join(
        f'\n[[prices]]\nmodel = "{model}"\ninput_per_million = "{input_price}"\noutput_per_million = "{output_price}"\ncurrency = "{CURRENCY}"\n'
        for model, (input_price, output_price) in PRICES.items()
    )
    config_path.write_text(
        f"""# Written by tests/sdk/test_billing_sdk.py for its own keygate.
demo_upstream = true
usage_flush_interval_milliseconds = {USAGE_FLUSH_INTERVAL_MILLISECONDS}

[[upstreams]]
name = "test-double"
openai_base_url = "{upstream_double_base_url}/openai/v1"
dashscope_base_url = "{upstream_double_base_url}/dashscope/api/v1"
anthropic_base_url = "{upstream_double_base_url}/anthropic"
api_key_env = "{UPSTREAM_CREDENTIAL_VARIABLE}"
models = ["{DOUBLE_CHAT_MODEL}", "{DOUBLE_EMBEDDING_MODEL}"]
{prices}""",
        encoding="utf-8",
    )
    return config_path


@pytest.fixture(scope="module")
def billing_server(keygate_binary, tmp_path_factory, upstream_double, upstream_secret) -> KeygateServer:
    """A keygate of this file's own, with alice (key-manager) and bob (member)."""
    config_path = write_billing_config(tmp_path_factory.mktemp("billing-config") / "keygate.toml", upstream_double.base_url)
    server = KeygateServer(keygate_binary, tmp_path_factory.mktemp("billing-data"), config_path,
                           {UPSTREAM_CREDENTIAL_VARIABLE: upstream_secret})
    server.access_key_by_owner["root"] = server.create_access_key()
    server.create_user("alice", "key-manager")
    server.access_key_by_owner["alice"] = server.create_access_key("alice")
    server.create_user("bob", "member")
    server.access_key_by_owner["bob"] = server.create_access_key("bob")
    server.start()
    yield server
    server.stop()


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def openai_client(server: KeygateServer, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url(PRIMARY_REGION)}/compatible-mode/v1", api_key=api_key,
                         max_retries=0, timeout=30)


def openai_chat(server: KeygateServer, api_key: str, model: str, text: str) -> tuple[int, int]:
    completion = openai_client(server, api_key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}],
    )
    return completion.usage.prompt_tokens, completion.usage.completion_tokens


def openai_embedding(server: KeygateServer, api_key: str, model: str, texts: list[str]) -> int:
    embedding = openai_client(server, api_key).embeddings.create(model=model, input=texts)
    return embedding.usage.prompt_tokens


def dashscope_generation(server: KeygateServer, api_key: str, model: str, text: str) -> tuple[int, int]:
    previous_base_url = dashscope.base_http_api_url
    dashscope.base_http_api_url = f"{server.base_url(PRIMARY_REGION)}/api/v1"
    try:
        response = dashscope.Generation.call(model=model, messages=[{"role": "user", "content": text}],
                                             result_format="message", api_key=api_key)
    finally:
        dashscope.base_http_api_url = previous_base_url
    assert response.status_code == HTTPStatus.OK, (response.code, response.message)
    return response.usage.input_tokens, response.usage.output_tokens


@pytest.fixture(scope="module")
def scene(billing_server) -> Scene:
    server = billing_server
    root_client = server.signed_client(PRIMARY_REGION, server.access_key_by_owner["root"])
    alice_client = server.signed_client(PRIMARY_REGION, server.access_key_by_owner["alice"])
    bob_client = server.signed_client(PRIMARY_REGION, server.access_key_by_owner["bob"])
    [default_workspace] = root_client.list_workspaces(modelstudio_models.ListWorkspacesRequest()).body.workspaces
    default_workspace_id = default_workspace.workspace_id
    created = root_client.create_workspace(
        modelstudio_models.CreateWorkspaceRequest(workspace_name="billing-sub-" + uuid.uuid4().hex[:8])
    )
    assert_successful_envelope(created)
    sub_workspace_id = created.body.workspace.workspace_id
    granted = root_client.update_model_permissions(modelstudio_models.UpdateModelPermissionsRequest(
        workspace_id=sub_workspace_id,
        models=[modelstudio_models.UpdateModelPermissionsRequestModels(model=DOUBLE_CHAT_MODEL, inference=True)],
    ))
    assert_successful_envelope(granted)
    root_key = create_api_key(server, root_client, default_workspace_id, "billing: root")
    root_sub_key = create_api_key(server, root_client, sub_workspace_id, "billing: root, sub-workspace")
    alice_key = create_api_key(server, alice_client, default_workspace_id, "billing: alice")

    day_before = utc_today()
    calls: list[Call] = []

    def record(key, workspace_id: str, model: str, tokens: tuple[int, int]) -> None:
        calls.append(Call(str(key.api_key_id), workspace_id, model, *tokens))

    # root, default workspace: two chats on the double, a demo chat, an unpriced embedding.
    for _ in range(2):
        tokens = openai_chat(server, root_key.api_key_value, DOUBLE_CHAT_MODEL, "billing " + uuid.uuid4().hex)
        assert tokens == DOUBLE_CHAT_USAGE
        record(root_key, default_workspace_id, DOUBLE_CHAT_MODEL, tokens)
    tokens = openai_chat(server, root_key.api_key_value, DEMO_CHAT_MODEL, "alpha beta gamma delta")
    assert tokens == (4, DEMO_REPLY_PREFIX_WORDS + 4), "the demo's tokens are the words of the request and of its reply"
    record(root_key, default_workspace_id, DEMO_CHAT_MODEL, tokens)
    input_tokens = openai_embedding(server, root_key.api_key_value, DOUBLE_EMBEDDING_MODEL, ["one", "two"])
    assert input_tokens == 2
    record(root_key, default_workspace_id, DOUBLE_EMBEDDING_MODEL, (input_tokens, 0))
    # root, sub-workspace: a native (DashScope) chat on the double.
    tokens = dashscope_generation(server, root_sub_key.api_key_value, DOUBLE_CHAT_MODEL, "billing in the sub-workspace")
    assert tokens == DOUBLE_CHAT_USAGE
    record(root_sub_key, sub_workspace_id, DOUBLE_CHAT_MODEL, tokens)
    # alice, default workspace: a demo chat and a demo embedding.
    tokens = openai_chat(server, alice_key.api_key_value, DEMO_CHAT_MODEL, "one two")
    assert tokens == (2, DEMO_REPLY_PREFIX_WORDS + 2)
    record(alice_key, default_workspace_id, DEMO_CHAT_MODEL, tokens)
    input_tokens = openai_embedding(server, alice_key.api_key_value, DEMO_EMBEDDING_MODEL, ["red green blue yellow"])
    assert input_tokens == 4
    record(alice_key, default_workspace_id, DEMO_EMBEDDING_MODEL, (input_tokens, 0))

    # Wait for the usage flush: until the account's total is what the calls cost.
    expected_total = amount_text(sum(call.micros for call in calls))
    month = day_before.strftime("%Y-%m")
    deadline = time.monotonic() + 20
    while True:
        response = root_client.get_billing_overview(overview_request(month, "API_KEY_ID", zero_filter=False))
        data = response.body.data
        if data.total_amount == expected_total and len(data.groups) == 3:
            break
        assert time.monotonic() < deadline, f"usage not flushed: {data.to_map()}, expected total {expected_total}"
        time.sleep(USAGE_FLUSH_INTERVAL_MILLISECONDS / 1000)
    day = utc_today()
    if day != day_before:
        pytest.skip("the calls ran across midnight UTC: their usage is on two days")
    return Scene(server, root_client, alice_client, bob_client, default_workspace_id, sub_workspace_id,
                 str(root_key.api_key_id), str(root_sub_key.api_key_id), str(alice_key.api_key_id), day, calls)


def bill_month(scene: Scene) -> str:
    return scene.day.strftime("%Y-%m")


def day_period(scene: Scene) -> str:
    return scene.day.strftime("%Y%m%d")


def month_period(scene: Scene) -> str:
    return scene.day.strftime("%Y%m")


# ---- ListModels ----------------------------------------------------------------------------------


def list_models(client, **filters):
    response = client.list_models(modelstudio_models.ListModelsRequest(**filters))
    assert_successful_envelope(response)
    assert_every_field_parsed(response.body)
    return response.body


def test_list_models_parses_every_field_with_the_price_table(scene):
    body = list_models(scene.root_client, max_results=100)
    assert body.total_count == len(body.models) and body.max_results == 100 and body.next_token == ""
    assert body.error_message == "" and body.http_status_code == 200
    by_name = {model.model: model for model in body.models}
    assert {DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL, DOUBLE_CHAT_MODEL, DOUBLE_EMBEDDING_MODEL} <= set(by_name)
    for name, model in by_name.items():
        assert isinstance(model.published_time, int) and isinstance(model.description, str)
        assert model.model_info.context_window == 0 and model.model_info.reasoning_max_output_tokens == 0
        assert model.inference_metadata.response_modality == ["Text"]
        if name not in PRICES and name not in DEMO_DISPLAY_NAME:
            assert model.prices == [], (name, model.to_map())
    for name, (input_price, output_price) in PRICES.items():
        [price_range] = by_name[name].prices
        assert price_range.range_name == "Default"
        assert [(price.price_name, price.price, price.price_unit, price.time_band) for price in price_range.prices] == [
            ("input", str(input_price), f"{CURRENCY} per 1M tokens", "standard"),
            ("output", str(output_price), f"{CURRENCY} per 1M tokens", "standard"),
        ]
    echo = by_name[DEMO_CHAT_MODEL]
    assert (echo.name, echo.provider, echo.capabilities, echo.features) == (DEMO_DISPLAY_NAME[DEMO_CHAT_MODEL], "keygate", ["TG"], [])
    assert echo.inference_metadata.request_modality == ["Text"]
    double = by_name[DOUBLE_EMBEDDING_MODEL]
    assert (double.name, double.provider, double.capabilities) == (DOUBLE_EMBEDDING_MODEL, "custom", ["ME"])


def test_list_models_filters_and_pages(scene):
    client = scene.root_client
    everything = [model.model for model in list_models(client, max_results=100).models]
    assert [model.model for model in list_models(client, model=DOUBLE_CHAT_MODEL).models] == [DOUBLE_CHAT_MODEL]
    # `name`: a part of the display name, in any case.
    assert [model.model for model in list_models(client, name="DEMO ECHO").models] == [DEMO_CHAT_MODEL]
    assert [model.model for model in list_models(client, providers=["keygate"]).models] == [DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL]
    custom = [model.model for model in list_models(client, providers=["custom"], max_results=100).models]
    assert custom == [DOUBLE_CHAT_MODEL, DOUBLE_EMBEDDING_MODEL]
    embedders = list_models(client, capabilities=["ME", "VU"], providers=["keygate", "custom"])
    assert [model.model for model in embedders.models] == [DEMO_EMBEDDING_MODEL, DOUBLE_EMBEDDING_MODEL]
    assert embedders.total_count == 2
    # keygate lists no features: a features filter keeps nothing.
    assert list_models(client, features=["function-calling"]).models == []
    assert list_models(client, model="no-such-model").total_count == 0
    # Accepted, changing nothing: language, contextWindow.
    assert [model.model for model in list_models(client, language="zh-CN", context_window=8192, max_results=100).models] == everything
    # Pages of one, walked with nextToken, give the whole list.
    walked, next_token = [], None
    while True:
        page = list_models(client, max_results=1, next_token=next_token)
        walked += [model.model for model in page.models]
        assert page.total_count == len(everything)
        if not page.next_token:
            break
        next_token = page.next_token
    assert walked == everything


def test_list_models_is_the_same_catalog_for_a_ram_user(scene):
    root_models = [model.to_map() for model in list_models(scene.root_client, max_results=100).models]
    alice_models = [model.to_map() for model in list_models(scene.alice_client, max_results=100).models]
    assert alice_models == root_models


# ---- GetBillingOverview --------------------------------------------------------------------------


@pytest.mark.parametrize("code", RECORDED_CODES)
def test_overview_by_every_recorded_code(scene, code):
    data = get_overview(scene.root_client, bill_month(scene), code)
    assert_overview(data, code, scene.calls)
    assert len(data.groups) >= 1


def test_overview_group_by_codes_are_read_in_any_case(scene):
    data = get_overview(scene.root_client, bill_month(scene), "base_model")
    assert_overview(data, "BASE_MODEL", scene.calls)


def test_overview_zero_filter_false_keeps_the_unpriced_model(scene):
    with_zero = get_overview(scene.root_client, bill_month(scene), "BASE_MODEL", zero_filter=False)
    assert_overview(with_zero, "BASE_MODEL", scene.calls, drop_zero=False)
    assert (DOUBLE_EMBEDDING_MODEL, DOUBLE_EMBEDDING_MODEL, "0.000000", "0.0000") in overview_rows(with_zero)
    without_zero = get_overview(scene.root_client, bill_month(scene), "BASE_MODEL", zero_filter=True)
    assert DOUBLE_EMBEDDING_MODEL not in [group.key for group in without_zero.groups]
    assert len(without_zero.groups) == len(with_zero.groups) - 1


@pytest.mark.parametrize("top", [1, 2])
def test_overview_top_n_has_no_others_group(scene, top):
    data = get_overview(scene.root_client, bill_month(scene), "API_KEY_ID", top_num=top)
    assert_overview(data, "API_KEY_ID", scene.calls, top=top)
    assert len(data.groups) == top
    # No others group here; the percentages are of the groups returned, the total of all.
    assert OTHERS_VALUE not in [group.key for group in data.groups]


def test_overview_filters_in_and_not(scene):
    client, month = scene.root_client, bill_month(scene)
    only_double = [("BASE_MODEL", "IN", [DOUBLE_CHAT_MODEL])]
    data = get_overview(client, month, "API_KEY_ID", only_double)
    assert_overview(data, "API_KEY_ID", [call for call in scene.calls if call.model == DOUBLE_CHAT_MODEL])
    assert {group.key for group in data.groups} == {scene.root_key_id, scene.root_sub_key_id}
    not_root = [("API_KEY_ID", "NOT", [scene.root_key_id])]
    data = get_overview(client, month, "BASE_MODEL", not_root)
    assert_overview(data, "BASE_MODEL", [call for call in scene.calls if call.key_id != scene.root_key_id])
    # Dimensions are ANDed.
    both = [("WORKSPACE_ID", "IN", [scene.default_workspace_id]), ("BASE_MODEL", "NOT", [DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL])]
    data = get_overview(client, month, "WORKSPACE_ID", both)
    kept = [call for call in scene.calls
            if call.workspace_id == scene.default_workspace_id and call.model not in (DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL)]
    assert_overview(data, "WORKSPACE_ID", kept)
    assert [group.key for group in data.groups] == [scene.default_workspace_id]
    # The constant dimensions: their one value keeps everything, any other nothing.
    for code, value in CONSTANT_VALUE.items():
        assert_overview(get_overview(client, month, "API_KEY_ID", [(code, "IN", [value])]), "API_KEY_ID", scene.calls)
        assert_overview(get_overview(client, month, "API_KEY_ID", [(code, "NOT", [value])]), "API_KEY_ID", [])
    for code, other in (("MAAS_TYPE", "training"), ("FEE_TYPE", "subscription"), ("CHARGE_TYPE", "prepaid")):
        assert_overview(get_overview(client, month, "BASE_MODEL", [(code, "IN", [other])]), "BASE_MODEL", [])
        assert_overview(get_overview(client, month, "BASE_MODEL", [(code, "NOT", [other])]), "BASE_MODEL", scene.calls)
    # keygate records every value: the null value matches nothing, and NOT of it drops nothing.
    assert_overview(get_overview(client, month, "API_KEY_ID", [("WORKSPACE_ID", "IN", [NULL_VALUE])]), "API_KEY_ID", [])
    assert_overview(get_overview(client, month, "API_KEY_ID", [("API_KEY_ID", "NOT", [NULL_VALUE])]), "API_KEY_ID", scene.calls)
    # The selectType aliases of one third-party note.
    include = get_overview(client, month, "API_KEY_ID", [("API_KEY_ID", "INCLUDE", [scene.alice_key_id])])
    assert_overview(include, "API_KEY_ID", scene.calls_of({scene.alice_key_id}))


def test_overview_of_a_month_without_usage_is_empty(scene):
    data = get_overview(scene.root_client, "2020-01", "API_KEY_ID", zero_filter=False, locale="zh-CN", region_id=PRIMARY_REGION)
    assert_overview(data, "API_KEY_ID", [])
    assert data.groups == []


@pytest.mark.parametrize("code", UNRECORDED_CODES)
def test_overview_refuses_the_codes_keygate_does_not_record(scene, code):
    for request in (
        overview_request(bill_month(scene), code),
        overview_request(bill_month(scene), "API_KEY_ID", [(code, "IN", ["anything"])]),
    ):
        with pytest.raises(ClientException) as raised:
            scene.root_client.get_billing_overview(request)
        assert_client_exception(raised.value, 400, "InvalidParameter")
        assert raised.value.data["message"] == f"keygate does not record {code} for usage.", raised.value.data
        assert code in str(raised.value), str(raised.value)


def test_overview_refuses_bad_requests(scene):
    client, month = scene.root_client, bill_month(scene)
    unknown = overview_request(month, "COLOUR")
    two = overview_request(month, "API_KEY_ID")
    two.group_by.append(modelstudio_models.GetBillingOverviewRequestGroupBy(code="BASE_MODEL"))
    refused = [
        (unknown, "Unknown dimension code 'COLOUR'"),
        (two, "groupBy must hold exactly one code."),
        (modelstudio_models.GetBillingOverviewRequest(bill_month=month), "groupBy is required."),
        (overview_request(None, "API_KEY_ID"), "billMonth is required"),
        (overview_request("2026-13", "API_KEY_ID"), "billMonth must be YYYY-MM"),
        (overview_request(month, "API_KEY_ID", top_num=21), "topNum"),
        (overview_request(month, "API_KEY_ID", [("BASE_MODEL", "BETWEEN", ["x"])]), "selectType must be IN or NOT"),
    ]
    for request, message in refused:
        with pytest.raises(ClientException) as raised:
            client.get_billing_overview(request)
        assert_client_exception(raised.value, 400, "InvalidParameter")
        assert message in raised.value.data["message"], raised.value.data


# ---- GetBillingTrend -----------------------------------------------------------------------------


@pytest.mark.parametrize("granularity", ["DAY", "MONTH"])
@pytest.mark.parametrize("code", RECORDED_CODES)
def test_trend_by_every_recorded_code_and_granularity(scene, code, granularity):
    start = scene.day - datetime.timedelta(days=1)
    end = scene.day + datetime.timedelta(days=1)
    data = get_trend(scene.root_client, granularity, start, end, code)
    assert_trend(data, code, scene.calls, day_period(scene) if granularity == "DAY" else month_period(scene))


def test_trend_top_n_merges_the_rest_into_others(scene):
    data = get_trend(scene.root_client, "DAY", scene.day, scene.day, "BASE_MODEL", top_num=2)
    assert_trend(data, "BASE_MODEL", scene.calls, day_period(scene), top=2)
    assert [group.key for group in data.group_by_total] == [DOUBLE_CHAT_MODEL, DEMO_CHAT_MODEL, OTHERS_VALUE]
    [period] = data.result_by_time
    assert OTHERS_VALUE in [detail.key for detail in period.period_details]
    # The others group of the unpriced model alone costs 0: zeroFilter drops it, or keeps it.
    data = get_trend(scene.root_client, "MONTH", scene.day, scene.day, "BASE_MODEL", top_num=3)
    assert [group.key for group in data.group_by_total] == [DOUBLE_CHAT_MODEL, DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL]
    data = get_trend(scene.root_client, "MONTH", scene.day, scene.day, "BASE_MODEL", top_num=3, zero_filter=False)
    assert_trend(data, "BASE_MODEL", scene.calls, month_period(scene), top=3, drop_zero=False)
    assert data.group_by_total[-1].key == OTHERS_VALUE and data.group_by_total[-1].amount == "0.000000"


def test_trend_filters_in_and_not(scene):
    data = get_trend(scene.root_client, "DAY", scene.day, scene.day, "API_KEY_ID",
                     [("WORKSPACE_ID", "IN", [scene.sub_workspace_id])])
    assert_trend(data, "API_KEY_ID", scene.calls_of({scene.root_sub_key_id}), day_period(scene))
    data = get_trend(scene.root_client, "MONTH", scene.day, scene.day, "WORKSPACE_ID",
                     [("BASE_MODEL", "NOT", [DOUBLE_CHAT_MODEL]), ("MAAS_TYPE", "IN", ["inference"])])
    assert_trend(data, "WORKSPACE_ID", [call for call in scene.calls if call.model != DOUBLE_CHAT_MODEL], month_period(scene))


def test_trend_of_days_without_usage_is_empty(scene):
    start = datetime.date(2020, 1, 1)
    data = get_trend(scene.root_client, "DAY", start, start + datetime.timedelta(days=30), "API_KEY_ID", zero_filter=False)
    assert_trend(data, "API_KEY_ID", [], "")
    # Both days are included: a period of the one day before the calls holds nothing.
    before = scene.day - datetime.timedelta(days=1)
    assert_trend(get_trend(scene.root_client, "DAY", before, before, "API_KEY_ID"), "API_KEY_ID", [], "")


@pytest.mark.parametrize("code", UNRECORDED_CODES)
def test_trend_refuses_the_codes_keygate_does_not_record(scene, code):
    for request in (
        trend_request("DAY", scene.day, scene.day, code),
        trend_request("MONTH", scene.day, scene.day, "BASE_MODEL", [(code, "NOT", ["anything"])]),
    ):
        with pytest.raises(ClientException) as raised:
            scene.root_client.get_billing_trend(request)
        assert_client_exception(raised.value, 400, "InvalidParameter")
        assert raised.value.data["message"] == f"keygate does not record {code} for usage.", raised.value.data


def test_trend_refuses_bad_requests(scene):
    day = scene.day
    refused = [
        (trend_request("WEEK", day, day, "API_KEY_ID"), "granularity must be DAY or MONTH"),
        (trend_request(None, day, day, "API_KEY_ID"), "granularity is required"),
        (modelstudio_models.GetBillingTrendRequest(granularity="DAY", group_by=[
            modelstudio_models.GetBillingTrendRequestGroupBy(code="API_KEY_ID")]), "timePeriod is required."),
        (trend_request("DAY", day, day - datetime.timedelta(days=1), "API_KEY_ID"), "timePeriod must run forward"),
        (trend_request("DAY", day - datetime.timedelta(days=400), day, "API_KEY_ID"), "at most 366 days"),
        (trend_request("DAY", day, day, "API_KEY_ID", top_num=0), "topNum"),
    ]
    for request, message in refused:
        with pytest.raises(ClientException) as raised:
            scene.root_client.get_billing_trend(request)
        assert_client_exception(raised.value, 400, "InvalidParameter")
        assert message in raised.value.data["message"], raised.value.data


def test_the_async_client_is_answered_the_same(scene):
    """The async client (aiohttp) leaves `,` and `:` of the JSON parameters unencoded."""
    filters = [("BASE_MODEL", "IN", [DOUBLE_CHAT_MODEL, DEMO_CHAT_MODEL])]

    async def both():
        overview = await scene.root_client.get_billing_overview_async(
            overview_request(bill_month(scene), "API_KEY_ID", filters, zero_filter=False))
        trend = await scene.root_client.get_billing_trend_async(
            trend_request("DAY", scene.day, scene.day, "API_KEY_ID", filters, top_num=20))
        return overview, trend

    overview, trend = asyncio.run(both())
    kept = [call for call in scene.calls if call.model in (DOUBLE_CHAT_MODEL, DEMO_CHAT_MODEL)]
    assert_billing_envelope(overview)
    assert_overview(overview.body.data, "API_KEY_ID", kept, drop_zero=False)
    assert_billing_envelope(trend)
    assert_trend(trend.body.data, "API_KEY_ID", kept, day_period(scene))


# ---- who sees what -------------------------------------------------------------------------------


def test_the_account_sees_every_key_a_ram_user_only_its_own(scene):
    month = bill_month(scene)
    root_view = get_overview(scene.root_client, month, "API_KEY_ID")
    assert {group.key for group in root_view.groups} == scene.all_key_ids
    alice_calls = scene.calls_of({scene.alice_key_id})
    for code in RECORDED_CODES:
        alice_view = get_overview(scene.alice_client, month, code, zero_filter=False)
        assert_overview(alice_view, code, alice_calls, drop_zero=False)
        trend = get_trend(scene.alice_client, "DAY", scene.day, scene.day, code)
        assert_trend(trend, code, alice_calls, day_period(scene))
    alice_view = get_overview(scene.alice_client, month, "API_KEY_ID")
    assert [group.key for group in alice_view.groups] == [scene.alice_key_id]
    assert 0 < int(alice_view.total_amount.replace(".", "")) < int(root_view.total_amount.replace(".", ""))
    alice_models = get_overview(scene.alice_client, month, "BASE_MODEL")
    assert [group.key for group in alice_models.groups] == [DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL]


def test_a_ram_user_cannot_filter_its_way_to_other_keys(scene):
    month = bill_month(scene)
    others = [scene.root_key_id, scene.root_sub_key_id]
    assert_overview(get_overview(scene.alice_client, month, "API_KEY_ID", [("API_KEY_ID", "IN", others)]), "API_KEY_ID", [])
    assert_overview(get_overview(scene.alice_client, month, "BASE_MODEL", [("API_KEY_ID", "NOT", [scene.alice_key_id])]),
                    "BASE_MODEL", [])
    trend = get_trend(scene.alice_client, "MONTH", scene.day, scene.day, "WORKSPACE_ID",
                      [("WORKSPACE_ID", "IN", [scene.sub_workspace_id])])
    assert_trend(trend, "WORKSPACE_ID", [], month_period(scene))


def test_a_member_without_keys_sees_no_usage(scene):
    for code in RECORDED_CODES:
        assert_overview(get_overview(scene.bob_client, bill_month(scene), code, zero_filter=False), code, [])
        assert_trend(get_trend(scene.bob_client, "MONTH", scene.day, scene.day, code, zero_filter=False), code, [], "")


def test_no_key_plaintext_in_the_billing_servers_files(scene):
    """This file's keygate wrote none of the keys or AccessKey secrets it saw (the suite's
    canary test covers only the suite's shared server)."""
    findings = []
    for path in sorted(p for p in scene.server.data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        findings += [f"{path.name}: {secret[:6]}..." for secret in set(scene.server.seen_secrets) if secret.encode() in content]
    assert len(set(scene.server.seen_secrets)) >= 6
    assert not findings, findings
