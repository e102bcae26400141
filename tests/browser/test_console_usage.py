"""The Usage page and a key's usage panel in a real browser, from real usage: two keys call
the demo models through the gateway (plain HTTP), and once the usage is written
(console_harness.USAGE_FLUSH_MILLISECONDS) both pages, at 1280 and at 390 pixels wide,
show it: the figures with the cost, the charts (SVG drawn by the server, each an image with
a title and description and its numbers in a table), nothing scrolling sideways, chart
text large enough to read, and nothing refused by the Content-Security-Policy. Then a
key's limits set in its page's form, and the banner once a call has used up its budget,
at both widths. Makes the usage and key-limits screenshots in docs/screenshots/ (with
KEYGATE_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from console_harness import (
    accessibility_problems,
    content_security_policy_violations,
    gateway_chat,
    gateway_embedding,
    page_width,
    set_viewport,
)

WIDTHS = [1280, 390]
BUSY = "usage: busy key"
QUIET = "usage: quiet key"
LIMITED = "limits: a one-token budget"
BUSY_CHATS, BUSY_EMBEDDINGS = 8, 2
BUSY_CALLS = BUSY_CHATS + BUSY_EMBEDDINGS
USAGE_WAIT_SECONDS = 20
# The smallest chart text the pages may draw, in CSS pixels.
SMALLEST_TEXT_PIXELS = 11


def figures(console, list_id: str) -> dict[str, str]:
    """The figures (name: value) of the list `list_id`."""
    items = console.driver.find_elements(By.CSS_SELECTOR, f"dl#{list_id} > div")
    return {item.find_element(By.TAG_NAME, "dt").text: item.find_element(By.TAG_NAME, "dd").text for item in items}


def count(text: str) -> int:
    return int(text.replace(",", ""))


def chart_rows(console, chart_id: str) -> list[list[str]]:
    """The cells of each row of a chart's table (read whether or not it is opened)."""
    rows = console.driver.find_elements(By.CSS_SELECTOR, f"section[aria-labelledby='{chart_id}-heading'] table tbody tr")
    return [[cell.get_attribute("textContent").strip() for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def assert_charts_drawn(console, chart_ids: list[str], width: int) -> None:
    """Each chart is an SVG image named by its title and described, fits the viewport, and
    its text is drawn large enough to read."""
    for chart_id in chart_ids:
        drawing = console.driver.find_element(By.CSS_SELECTOR, f"section[aria-labelledby='{chart_id}-heading'] svg")
        assert drawing.is_displayed(), chart_id
        assert drawing.get_attribute("role") == "img"
        assert drawing.get_attribute("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
        assert console.driver.find_element(By.ID, f"{chart_id}-desc").get_attribute("textContent").strip(), chart_id
        drawn_width = drawing.rect["width"]
        assert 0 < drawn_width <= width, (chart_id, drawn_width)
        text_pixels = console.driver.execute_script(
            "const drawing = arguments[0], text = drawing.querySelector('text');"
            "return drawing.getBoundingClientRect().width / drawing.viewBox.baseVal.width * parseFloat(getComputedStyle(text).fontSize);",
            drawing)
        assert text_pixels >= SMALLEST_TEXT_PIXELS, f"{chart_id} draws its text at {text_pixels:.1f} px at {width} px"


def assert_fits_and_obeys_the_policy(console, width: int) -> None:
    assert page_width(console.driver) <= width, f"{console.driver.current_url} scrolls sideways at {width} px"
    assert accessibility_problems(console.driver) == []
    assert content_security_policy_violations(console.driver) == []


def make_usage(server, key: str, chats: int, embeddings: int) -> tuple[int, int]:
    """`chats` calls to demo-echo and `embeddings` to demo-embed with `key`; the input and
    output tokens their answers reported."""
    input_tokens = output_tokens = 0
    for answer in [gateway_chat(server, key) for _ in range(chats)] + [gateway_embedding(server, key) for _ in range(embeddings)]:
        assert answer.status == 200, answer.body
        usage = json.loads(answer.body)["usage"]
        input_tokens += usage["prompt_tokens"]
        output_tokens += usage.get("completion_tokens", 0)
    return input_tokens, output_tokens


@pytest.fixture
def two_keys_with_usage(console, keygate_server):
    """The busy key (BUSY_CHATS chats and BUSY_EMBEDDINGS embeddings, more than any other
    test's key makes) and the quiet one (1 chat), made in the console; yields the busy
    key's (input, output) tokens, then deletes both keys."""
    console.sign_in()
    busy_key = console.create_key(description=BUSY)
    console.close_show_once()
    quiet_key = console.create_key(description=QUIET)
    console.close_show_once()
    busy_tokens = make_usage(keygate_server, busy_key, chats=BUSY_CHATS, embeddings=BUSY_EMBEDDINGS)
    make_usage(keygate_server, quiet_key, chats=1, embeddings=0)
    try:
        yield busy_tokens
    finally:
        set_viewport(console.driver, 1280, 900)
        console.open("/console/keys")
        for description in (BUSY, QUIET):
            console.row_action(description, "Delete")
            assert "deleted" in console.notice()


def open_key_page(console, description: str) -> None:
    """Follows the Usage link in the row of the key described `description` to its page."""
    console.open("/console/keys")
    console.submit(console.row_of_key(description).find_element(By.CSS_SELECTOR, ".row-actions a.link"))
    assert console.driver.find_element(By.TAG_NAME, "h1").text.startswith("API key ")


def test_the_usage_page_and_a_keys_panel_show_real_usage(console, two_keys_with_usage, save_screenshot):
    busy_input, busy_output = two_keys_with_usage
    busy_tokens = busy_input + busy_output

    # The key's page, once the usage is written: everything recorded and the last 30 days.
    open_key_page(console, BUSY)
    deadline = time.monotonic() + USAGE_WAIT_SECONDS
    while figures(console, "key-recorded").get("Requests") != str(BUSY_CALLS) and time.monotonic() < deadline:
        time.sleep(0.3)
        console.driver.refresh()
    key_page = console.driver.current_url
    content_security_policy_violations(console.driver)  # the pages before this one
    for width in WIDTHS:
        set_viewport(console.driver, width, 900)
        console.driver.get(key_page)
        for list_id in ("key-recorded", "key-in-range"):
            shown = figures(console, list_id)
            assert shown["Requests"] == str(BUSY_CALLS), (list_id, shown)
            assert shown["Input tokens"] == f"{busy_input:,}" and shown["Output tokens"] == f"{busy_output:,}", (list_id, shown)
            assert shown["Cost"].endswith(" USD"), shown
        assert console.driver.find_element(By.CSS_SELECTOR, ".range-choice a[aria-current=page]").text == "Last 30 days"
        assert_charts_drawn(console, ["key-tokens", "key-requests"], width)
        today = chart_rows(console, "key-requests")[-1]
        assert len(chart_rows(console, "key-requests")) == 30 and today[1] == str(BUSY_CALLS), today
        tokens_today = chart_rows(console, "key-tokens")[-1]
        assert tokens_today[1:] == [f"{busy_input:,}", f"{busy_output:,}"], tokens_today
        assert_fits_and_obeys_the_policy(console, width)
        save_screenshot(console.driver, f"key-usage-{width}.png", whole_page=True)

    # The Usage page over the last 24 hours: the account's totals (other tests' calls too),
    # the busy key among the top keys, both demo models, and four charts; the top keys and
    # models (with the others' bar) add up to the tokens in all.
    for width in WIDTHS:
        set_viewport(console.driver, width, 900)
        console.open("/console/usage?range=24h")
        assert console.driver.find_element(By.CSS_SELECTOR, "header nav a[aria-current=page]").text == "Usage"
        shown = figures(console, "usage-totals")
        assert count(shown["Requests"]) >= BUSY_CALLS + 1 and count(shown["Input tokens"]) >= busy_input, shown
        tokens_in_all = count(shown["Input tokens"]) + count(shown["Output tokens"])
        assert shown["Cost"].endswith(" USD") and shown["Cost"] != "0.000000 USD", shown
        assert_charts_drawn(console, ["usage-tokens", "usage-requests", "top-keys", "top-models"], width)
        assert len(chart_rows(console, "usage-tokens")) == 24
        top_keys = chart_rows(console, "top-keys")
        assert [BUSY, f"{busy_tokens:,}"] in [[label.split(" · ", 1)[-1], tokens] for label, tokens in top_keys], top_keys
        assert sum(count(tokens) for _, tokens in top_keys) == tokens_in_all, top_keys
        top_models = chart_rows(console, "top-models")
        assert {"demo-echo", "demo-embed"} <= {model for model, _ in top_models}, top_models
        assert sum(count(tokens) for _, tokens in top_models) == tokens_in_all, top_models
        # Each key's label links its page.
        link = console.driver.find_element(By.XPATH, f"//section[@aria-labelledby='top-keys-heading']//a[contains(., '{BUSY}')]")
        assert "/console/keys/" in link.get_attribute("href")
        assert_fits_and_obeys_the_policy(console, width)
        save_screenshot(console.driver, f"usage-{width}.png", whole_page=True)

    # The range links: seven days by day.
    set_viewport(console.driver, 1280, 900)
    console.submit(console.driver.find_element(By.XPATH, "//nav[@aria-label='Time range']//a[.='Last 7 days']"))
    assert console.driver.current_url.endswith("range=7d")
    assert len(chart_rows(console, "usage-requests")) == 7


def test_a_keys_limits_form_and_budget_banner(console, keygate_server, save_screenshot):
    """The limits form on a key's page refuses a 0 with the rules' message, then sets a
    daily budget of one token; one call uses it up, and once the usage is written the page
    has an alert banner, the key list's row a badge, and both fit at 1280 and 390 px."""
    console.sign_in()
    key = console.create_key(description=LIMITED)
    console.close_show_once()
    save_button = "#limits-form button[type=submit]:not([name])"
    try:
        open_key_page(console, LIMITED)
        key_page = console.driver.current_url
        console.fill("limits-requests_per_minute", "0")
        console.submit(console.driver.find_element(By.CSS_SELECTOR, save_button))
        error = console.driver.find_element(By.ID, "limits-form-error").text
        assert "requestsPerMinute must be an integer from 1" in error, error
        assert console.driver.find_element(By.ID, "limits-requests_per_minute").get_attribute("aria-invalid") == "true"
        console.fill("limits-requests_per_minute", "60")
        Select(console.driver.find_element(By.ID, "limits-budget_period")).select_by_value("day")
        console.fill("limits-budget_tokens", "1")
        console.submit(console.driver.find_element(By.CSS_SELECTOR, save_button))
        assert console.driver.find_element(By.CSS_SELECTOR, "#limits .notice").text == "The limits were saved."

        assert gateway_chat(keygate_server, key).status == 200
        console.driver.get(key_page)
        deadline = time.monotonic() + USAGE_WAIT_SECONDS
        while not console.driver.find_elements(By.ID, "key-warnings") and time.monotonic() < deadline:
            time.sleep(0.3)
            console.driver.refresh()
        for width in WIDTHS:
            set_viewport(console.driver, width, 900)
            console.driver.get(key_page)
            banner = console.driver.find_element(By.ID, "key-warnings")
            assert banner.get_attribute("role") == "alert" and "budget is used up" in banner.text, banner.text
            assert figures(console, "key-budget")["Tokens left"] == "0"
            assert console.driver.find_element(By.ID, "limits-form").is_displayed()
            assert_fits_and_obeys_the_policy(console, width)
            save_screenshot(console.driver, f"key-limits-{width}.png", whole_page=True)
            console.open("/console/keys")
            assert "Budget used up" in console.row_of_key(LIMITED).text
            assert_fits_and_obeys_the_policy(console, width)
    finally:
        set_viewport(console.driver, 1280, 900)
        console.open("/console/keys")
        console.row_action(LIMITED, "Delete")
