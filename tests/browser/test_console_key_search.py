"""The key list's search and paging in a real browser: eleven keys made over HTTP, found
by a part of their description in another case and by the start of a key's id, paged ten
at a time with Next and Previous keeping the search."""

from __future__ import annotations

import re

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from console_harness import FORM_HEADERS, form_body, hidden_csrf_token, http_request, sign_in_over_http


def make_keys(keygate_server, descriptions: list[str]) -> list[str]:
    """Keys made through the console's Create form over HTTP; their ids."""
    session, _ = sign_in_over_http(keygate_server)
    cookie = {"cookie": f"keygate_session={session}"}
    page = http_request("GET", keygate_server.base_url() + "/console/keys?region=ap-southeast-1", cookie)
    token = hidden_csrf_token(page.body)
    ids = []
    for description in descriptions:
        fields = {"csrf_token": token, "permission": "All", "description": description}
        answer = http_request("POST", keygate_server.base_url() + "/console/keys?region=ap-southeast-1", {**FORM_HEADERS, **cookie}, form_body(fields))
        assert answer.status == 200, answer.body[:500]
        keygate_server.remember_secret(re.search(r'id="show-once-key"[^>]*value="([^"]+)"', answer.body).group(1))
        ids.append(re.search(r"keygate-api-key-(\d+)\.txt", answer.body).group(1))
    return ids


def described(console) -> list[str]:
    return [cell.text for cell in console.driver.find_elements(By.CSS_SELECTOR, "table.keys td[data-label='Description']")]


def test_search_and_pages(console, keygate_server):
    ids = make_keys(keygate_server, [f"Paging sample {index}" for index in range(1, 12)])
    console.sign_in()
    console.open("/console/keys")
    console.fill("keys-q", "paging SAMPLE")
    Select(console.driver.find_element(By.ID, "keys-size")).select_by_value("10")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#keys-search button[type=submit]"))
    assert described(console) == [f"Paging sample {index}" for index in range(11, 1, -1)]
    assert console.driver.find_element(By.ID, "keys-range").text == "Keys 1–10 of 11"

    console.submit(console.driver.find_element(By.ID, "keys-next"))
    assert described(console) == ["Paging sample 1"]
    assert "q=paging%20SAMPLE" in console.driver.current_url.replace("+", "%20") and "size=10" in console.driver.current_url
    console.submit(console.driver.find_element(By.ID, "keys-previous"))
    assert len(described(console)) == 10

    # The start of a key's id finds that key.
    console.fill("keys-q", ids[0])
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#keys-search button[type=submit]"))
    rows = console.driver.find_elements(By.CSS_SELECTOR, "table.keys tbody tr")
    assert ids[0] in [row.get_attribute("data-key-id") for row in rows]

    console.fill("keys-q", "no key is called this")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#keys-search button[type=submit]"))
    assert "No API key matches" in console.driver.find_element(By.ID, "keys-none-found").text
