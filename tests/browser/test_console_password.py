"""Changing one's own password in the console: the link in every page's header leads to
the form; a wrong current password is refused on the form; after the change the session
that made it stays signed in, a session cookie from before it is refused (in the browser
and over plain HTTP), the old password no longer signs in and the new one does."""

from __future__ import annotations

import secrets

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from console_harness import USER_PASSWORD, http_request

PASSWORD_FORM_BUTTON = "#password-form button[type=submit]"


def fill_password_form(console, current: str, new: str, repeat: str) -> None:
    console.fill("current-password", current)
    console.fill("new-password", new)
    console.fill("repeat-password", repeat)
    console.submit(console.driver.find_element(By.CSS_SELECTOR, PASSWORD_FORM_BUTTON))


def test_a_user_changes_its_password_and_a_session_from_before_is_refused(console, keygate_server):
    new_password = keygate_server.remember_secret("erin-new-password-" + secrets.token_hex(4))

    # A session from before the change (say, another browser), then this browser's own.
    console.sign_in(user="erin")
    old_cookie = console.driver.get_cookie("keygate_session")["value"]
    console.sign_in(user="erin")
    assert console.driver.get_cookie("keygate_session")["value"] != old_cookie

    # The header of every page links to the form, for a member too.
    link = console.driver.find_element(By.CSS_SELECTOR, "header a.who-password")
    assert link.text == "Change password"
    console.submit(link)
    assert console.driver.find_element(By.TAG_NAME, "h1").text == "Change your password"

    fill_password_form(console, "not-erins-password", new_password, new_password)
    error = console.driver.find_element(By.ID, "current-password-error").text
    assert error == "The current password is wrong; the password was not changed.", error
    assert console.driver.find_element(By.ID, "current-password").get_attribute("aria-invalid") == "true"

    fill_password_form(console, USER_PASSWORD, new_password, new_password)
    assert "Your password was changed." in console.notice()

    # This session stays signed in.
    console.open("/console/keys")
    assert console.driver.find_elements(By.CSS_SELECTOR, "header nav")
    current_cookie = console.driver.get_cookie("keygate_session")["value"]
    still = http_request("GET", keygate_server.base_url() + "/console/keys", {"cookie": f"keygate_session={current_cookie}"})
    assert still.status == 200, still.status

    # The session from before the change is refused: over HTTP, and in the browser.
    refused = http_request("GET", keygate_server.base_url() + "/console/keys", {"cookie": f"keygate_session={old_cookie}"})
    assert (refused.status, refused.headers.get("Location")) == (303, "/console/login")
    console.driver.delete_all_cookies()
    console.driver.add_cookie({"name": "keygate_session", "value": old_cookie, "path": "/console", "httpOnly": True, "sameSite": "Strict"})
    console.open("/console/keys")
    console.wait.until(expected_conditions.presence_of_element_located((By.ID, "login-password")))
    assert console.driver.current_url.endswith("/console/login")

    # The old password signs in no more; the new one does.
    console.fill("login-account", "root")
    console.fill("login-user", "erin")
    console.fill("login-password", USER_PASSWORD)
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button[type=submit]"))
    assert console.driver.find_element(By.ID, "login-error").text == "The name or password is wrong."
    console.sign_in(user="erin", password=new_password)
    assert "erin@root" in console.driver.find_element(By.CSS_SELECTOR, ".who-name").text
