"""Who sees what: a RAM user sees only its own keys (the account sees all of them), a
member sees why it cannot create a key and is refused if it tries, and the
administration pages are for the account and admins only."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from console_harness import FORM_HEADERS, form_body, hidden_csrf_token, http_request


def descriptions(console) -> set[str]:
    return {console.cell(row, "Description") for row in console.key_rows()}


def test_a_ram_user_sees_only_its_own_keys(console):
    console.sign_in()
    console.create_key(description="roles: root's key")
    console.close_show_once()
    console.sign_out()

    console.sign_in(user="alice")
    assert "You see only the API keys you created." in console.driver.find_element(By.CSS_SELECTOR, ".page-head").text
    assert "roles: root's key" not in descriptions(console)
    console.create_key(description="roles: alice's key")
    console.close_show_once()
    assert descriptions(console) == {"roles: alice's key"}
    assert console.cell(console.row_of_key("roles: alice's key"), "Creator") == "alice"
    # No administration pages for a key-manager; the Usage page, of its own keys only.
    assert [link.text for link in console.driver.find_elements(By.CSS_SELECTOR, "header nav a")] == ["API keys", "Usage"]
    console.open("/console/usage")
    assert "The usage of the API keys you created" in console.driver.find_element(By.CSS_SELECTOR, ".page-head").text
    console.open("/console/users")
    assert console.driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
    console.sign_out()

    console.sign_in()
    assert {"roles: root's key", "roles: alice's key"} <= descriptions(console)
    assert console.cell(console.row_of_key("roles: alice's key"), "Creator") == "alice"
    console.row_action("roles: alice's key", "Delete")
    assert "deleted" in console.notice()
    console.row_action("roles: root's key", "Delete")
    assert "deleted" in console.notice()


def test_a_member_sees_why_it_cannot_create(console, keygate_server):
    console.sign_in(user="bob")
    create_button = console.driver.find_element(By.ID, "create-button")
    assert not create_button.is_enabled()
    assert create_button.get_attribute("aria-describedby") == "create-denied"
    reason = console.driver.find_element(By.ID, "create-denied").text
    assert "member role may not create API keys" in reason, reason
    assert not console.driver.find_elements(By.ID, "create-dialog")

    # Sending the form anyway (with bob's own session and CSRF token) is refused by the
    # same rule the API applies, and creates nothing.
    session = console.driver.get_cookie("keygate_session")["value"]
    csrf_token = hidden_csrf_token(console.driver.page_source)
    answer = http_request(
        "POST",
        keygate_server.base_url() + "/console/keys?region=ap-southeast-1",
        {**FORM_HEADERS, "cookie": f"keygate_session={session}"},
        form_body({"csrf_token": csrf_token, "permission": "All", "description": "roles: bob's try"}),
    )
    assert answer.status == 403, answer.status
    assert "member role may not create API keys" in answer.body
    console.driver.refresh()
    assert not console.key_rows()
