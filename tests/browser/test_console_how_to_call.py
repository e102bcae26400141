"""The "how to call" panel in a real browser: shown in the show-once dialog after Create,
with each protocol's base URL and a curl and a Python snippet that copy to the clipboard;
the snippet's URL and model, called with the new key, answer."""

from __future__ import annotations

import json
import re

from selenium.webdriver.common.by import By

from console_harness import http_request, read_clipboard


def test_the_panel_after_create_names_urls_that_answer(console, keygate_server):
    console.sign_in()
    key = console.create_key(description="browser: how to call")
    panel = console.driver.find_element(By.ID, "show-once-how-to-call")
    assert panel.is_displayed()
    base = keygate_server.base_url()
    assert console.driver.find_element(By.ID, "show-once-base-url-native").text == f"{base}/api/v1"
    assert console.driver.find_element(By.ID, "show-once-base-url-openai").text == f"{base}/compatible-mode/v1"
    assert console.driver.find_element(By.ID, "show-once-base-url-anthropic").text == f"{base}/apps/anthropic"
    curl = console.driver.find_element(By.ID, "show-once-snippet-curl").text
    assert "$DASHSCOPE_API_KEY" in curl and key not in curl, curl

    # Copy puts the snippet itself on the clipboard.
    button = panel.find_element(By.CSS_SELECTOR, "[data-copy-target='show-once-snippet-curl']")
    button.click()
    console.wait.until(lambda driver: button.get_attribute("data-copy-state") in ("copied", "failed"))
    assert button.get_attribute("data-copy-state") == "copied"
    clipboard = read_clipboard(console.driver)
    if clipboard is not None:
        assert clipboard == curl

    # What the snippet sends, sent with the key, is answered by the gateway.
    url = re.search(r"curl (\S+)", curl).group(1)
    body = re.search(r"-d '(.*)'", curl).group(1)
    answer = http_request("POST", url, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, body.encode())
    assert answer.status == 200, answer.body
    assert json.loads(answer.body)["choices"][0]["message"]["content"]
    console.close_show_once()
