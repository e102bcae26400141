"""CSRF and session cookies, over plain HTTP and in the browser: a form without its token
is refused and changes nothing, the session cookie is HttpOnly, SameSite=Strict, scoped
to /console and expires, and signing out ends the session on the server."""

from __future__ import annotations

import json
import time

from console_harness import FORM_HEADERS, cookie_value, form_body, hidden_csrf_token, http_request, sign_in_over_http


def count_keys(server, session: str) -> int:
    """The account's keys, through the management API with the same session."""
    answer = http_request("GET", server.base_url() + "/modelstudio/apikeys?maxResults=100", {"x-acs-bearer-token": session})
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["totalCount"]


def test_forms_without_their_csrf_token_are_refused(keygate_server):
    session, _ = sign_in_over_http(keygate_server)
    cookie = {"cookie": f"keygate_session={session}"}
    page = http_request("GET", keygate_server.base_url() + "/console/keys", cookie)
    assert page.status == 200
    token = hidden_csrf_token(page.body)
    before = count_keys(keygate_server, session)
    create_url = keygate_server.base_url() + "/console/keys?region=ap-southeast-1"
    for fields in ({"permission": "All", "description": "csrf: no token"}, {"permission": "All", "description": "csrf: wrong token", "csrf_token": "0" * len(token)}):
        refused = http_request("POST", create_url, {**FORM_HEADERS, **cookie}, form_body(fields))
        assert refused.status == 403, refused.status
        assert "Form refused" in refused.body
    # Another session's token does not work either.
    other_session, _ = sign_in_over_http(keygate_server)
    other_token = hidden_csrf_token(http_request("GET", keygate_server.base_url() + "/console/keys", {"cookie": f"keygate_session={other_session}"}).body)
    assert other_token != token
    crossed = http_request("POST", create_url, {**FORM_HEADERS, **cookie}, form_body({"permission": "All", "csrf_token": other_token}))
    assert crossed.status == 403
    assert count_keys(keygate_server, session) == before

    # The login form has a token too.
    login = http_request("POST", keygate_server.base_url() + "/console/login", FORM_HEADERS, form_body({"account": "root", "password": keygate_server.root_password}))
    assert login.status in (400, 403) and cookie_value(login.set_cookies(), "keygate_session") is None

    # With its token, the same form works.
    accepted = http_request("POST", create_url, {**FORM_HEADERS, **cookie}, form_body({"permission": "All", "description": "csrf: with token", "csrf_token": token}))
    assert accepted.status == 200 and 'id="show-once"' in accepted.body
    assert count_keys(keygate_server, session) == before + 1
    key_id = json.loads(http_request("GET", keygate_server.base_url() + "/modelstudio/apikeys?description=csrf%3A+with+token", {"x-acs-bearer-token": session}).body)["apiKeys"][0]["apiKeyId"]
    deleted = http_request("POST", keygate_server.base_url() + f"/console/keys/{key_id}/delete?region=ap-southeast-1", {**FORM_HEADERS, **cookie}, form_body({"csrf_token": token}))
    assert deleted.status == 303


def test_the_session_cookie_has_its_flags_and_signing_out_ends_it(keygate_server, console):
    session, answer = sign_in_over_http(keygate_server)
    line = next(line for line in answer.set_cookies() if line.startswith("keygate_session="))
    attributes = [part.strip() for part in line.split(";")[1:]]
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes and "Path=/console" in attributes, line
    assert "Max-Age=43200" in attributes, line
    assert answer.headers["Location"] == "/console/keys"

    # The browser's view of the same cookie.
    console.sign_in()
    cookie = console.driver.get_cookie("keygate_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/console", cookie
    assert 0 < cookie["expiry"] - time.time() <= 43200 + 60, cookie
    assert console.driver.execute_script("return document.cookie") == ""
    browser_session = cookie["value"]
    console.sign_out()
    assert console.driver.get_cookie("keygate_session") is None
    after = http_request("GET", keygate_server.base_url() + "/console/keys", {"cookie": f"keygate_session={browser_session}"})
    assert after.status == 303 and after.headers["Location"] == "/console/login"
