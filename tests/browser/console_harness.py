"""Harness of the console browser suite: the shared keygate process
(tests/python_harness/keygate_process.py) with the suite's settings file, headless Chromium
from Debian's packages driven through /usr/bin/chromedriver, page helpers for the console,
and a plain-HTTP client for the gateway and for the CSRF checks.

Nothing here asserts product behaviour; the test files do.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from keygate_process import CLASSIC_REGION, PRIMARY_REGION, KeygateProcess, http_exchange

# us-east-1 counts keys per owner; the suite lowers its limit so that "quota reached" is
# one key away for a dedicated RAM user.
CLASSIC_REGION_KEY_LIMIT = 2
CHROMEDRIVER_PATH = "/usr/bin/chromedriver"
CHROMIUM_PATH = "/usr/bin/chromium"
WAIT_SECONDS = 15
USER_PASSWORD = "user-password-" + secrets.token_hex(4)
SECURE_KEY_PATTERN = re.compile(r"^sk-ws-[A-Za-z0-9]{38}$")
CLASSIC_KEY_PATTERN = re.compile(r"^sk-[0-9a-f]{32}$")


# Usage is counted in memory and written this often, so that the Usage page shows a call
# soon after it; demo-echo is priced (per million input and output tokens), so that the
# page has a cost to show.
USAGE_FLUSH_MILLISECONDS = 200
DEMO_ECHO_PRICES = ("0.8", "2")


def console_test_server(binary_path: Path, data_dir: Path) -> KeygateProcess:
    """The suite's `keygate serve` (listeners for ap-southeast-1 and us-east-1, not started):
    its settings file, in the data dir, lowers us-east-1's key limit to
    CLASSIC_REGION_KEY_LIMIT, writes usage every USAGE_FLUSH_MILLISECONDS and prices
    demo-echo at DEMO_ECHO_PRICES (USD); `keygate admin create-user` gives new RAM users
    USER_PASSWORD."""
    config_path = data_dir / "keygate.toml"
    input_price, output_price = DEMO_ECHO_PRICES
    config_path.write_text(
        f"usage_flush_interval_milliseconds = {USAGE_FLUSH_MILLISECONDS}\n\n"
        f'[[prices]]\nmodel = "demo-echo"\ninput_per_million = "{input_price}"\noutput_per_million = "{output_price}"\ncurrency = "USD"\n\n'
        f'[[regions]]\nid = "{CLASSIC_REGION}"\nkey_limit = {CLASSIC_REGION_KEY_LIMIT}\n',
        encoding="utf-8",
    )
    return KeygateProcess(binary_path, data_dir, config_path=config_path,
                          environment={"KEYGATE_USER_PASSWORD": USER_PASSWORD})


# ---- plain HTTP ---------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


def http_request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> HttpAnswer:
    """One request, redirects not followed; any status is returned, not raised."""
    status, answer_headers, answer_body = http_exchange(method, url, headers, body, follow_redirects=False)
    return HttpAnswer(status, answer_headers, answer_body.decode("utf-8", "replace"))


def form_body(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def gateway_embedding(server: KeygateProcess, api_key: str, region: str = PRIMARY_REGION) -> HttpAnswer:
    """An OpenAI-compatible embeddings call to demo-embed through the gateway with `api_key`."""
    body = json.dumps({"model": "demo-embed", "input": "words to embed for the console test"}).encode()
    return http_request("POST", server.base_url(region) + "/compatible-mode/v1/embeddings", {"authorization": f"Bearer {api_key}", "content-type": "application/json"}, body)


def gateway_chat(server: KeygateProcess, api_key: str, region: str = PRIMARY_REGION, model: str = "demo-echo") -> HttpAnswer:
    """An OpenAI-compatible chat call through the gateway with `api_key`."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hello from the console test"}]}).encode()
    return http_request("POST", server.base_url(region) + "/compatible-mode/v1/chat/completions", {"authorization": f"Bearer {api_key}", "content-type": "application/json"}, body)


def hidden_csrf_token(html_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html_text)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def cookie_value(set_cookie_lines: list[str], name: str) -> str | None:
    for line in set_cookie_lines:
        first = line.split(";", 1)[0]
        cookie_name, _, value = first.partition("=")
        if cookie_name.strip() == name:
            return value.strip()
    return None


def sign_in_over_http(server: KeygateProcess, account: str = "root", user: str = "", password: str | None = None) -> tuple[str, HttpAnswer]:
    """Signs in with plain HTTP the way a browser does; returns the session cookie value
    and the answer to the login POST."""
    page = http_request("GET", server.base_url() + "/console/login")
    nonce = cookie_value(page.set_cookies(), "keygate_login")
    assert nonce, page.set_cookies()
    fields = {"csrf_token": hidden_csrf_token(page.body), "account": account, "user": user, "password": password or server.root_password}
    answer = http_request("POST", server.base_url() + "/console/login", {**FORM_HEADERS, "cookie": f"keygate_login={nonce}"}, form_body(fields))
    session = cookie_value(answer.set_cookies(), "keygate_session")
    assert answer.status == 303 and session, (answer.status, answer.set_cookies(), answer.body[:500])
    return session, answer


# ---- the browser --------------------------------------------------------------------------


def new_browser(download_dir: Path, accept_language: str = "en-US,en") -> WebDriver:
    """Headless Chromium from Debian's packages; nothing is downloaded. It asks for pages
    in `accept_language` (its Accept-Language header)."""
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM_PATH
    user_data_dir = tempfile.mkdtemp(prefix="keygate-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    # The console log, where Chromium reports what the Content-Security-Policy refused.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER_PATH), options=options)
    driver.keygate_user_data_dir = user_data_dir
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    user_agent = driver.execute_script("return navigator.userAgent")
    driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": user_agent, "acceptLanguage": accept_language})
    set_viewport(driver, 1280, 900)
    return driver


def set_viewport(driver: WebDriver, width: int, height: int) -> None:
    """An exact viewport (screenshots are `width` pixels wide)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def page_width(driver: WebDriver) -> int:
    """How wide the page is laid out: wider than the viewport when it scrolls sideways."""
    return driver.execute_script("return document.documentElement.scrollWidth")


def save_whole_page(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page at the viewport's width: the viewport is made as tall
    as the page (up to 6000 px) for it, then put back."""
    width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    set_viewport(driver, width, min(page_height, 6000))
    try:
        driver.save_screenshot(str(path))
    finally:
        set_viewport(driver, width, height)


def content_security_policy_violations(driver: WebDriver) -> list[str]:
    """What Chromium's console reported as refused by the page's Content-Security-Policy
    since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


# Run in a page: each control has an accessible name (a label, or aria-label), each dialog
# a title, no id is used twice, and the document has a language.
ACCESSIBILITY_PROBLEMS = """
const problems = [];
const named = (element) => (element.labels && element.labels.length > 0) || element.getAttribute('aria-label') || element.getAttribute('aria-labelledby');
for (const element of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (!named(element)) problems.push('unlabelled control: ' + element.outerHTML.slice(0, 120));
}
for (const button of document.querySelectorAll('button')) {
  if (!(button.textContent.trim() || button.getAttribute('aria-label'))) problems.push('button without a name: ' + button.outerHTML.slice(0, 120));
}
for (const dialog of document.querySelectorAll('dialog')) {
  const title = document.getElementById(dialog.getAttribute('aria-labelledby') || '');
  if (!title || !title.textContent.trim()) problems.push('dialog without a title: ' + dialog.id);
}
const seen = new Set();
for (const element of document.querySelectorAll('[id]')) {
  if (seen.has(element.id)) problems.push('duplicate id: ' + element.id);
  seen.add(element.id);
}
if (!document.documentElement.lang) problems.push('no lang on <html>');
return problems;
"""


def accessibility_problems(driver: WebDriver) -> list[str]:
    return driver.execute_script(ACCESSIBILITY_PROBLEMS)


def grant_clipboard(driver: WebDriver, origin: str) -> None:
    driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})


def read_clipboard(driver: WebDriver) -> str | None:
    """The clipboard's text, or None where headless Chromium cannot read it."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(text => done({text}), error => done({error: String(error)}));"
    )
    return result.get("text") if isinstance(result, dict) else None


class Console:
    """Steps on the console's pages, as a person does them."""

    def __init__(self, driver: WebDriver, server: KeygateProcess):
        self.driver = driver
        self.server = server
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    # navigation -------------------------------------------------------------------------

    def open(self, path: str, region: str = PRIMARY_REGION) -> None:
        separator = "&" if "?" in path else "?"
        self.driver.get(f"{self.server.base_url()}{path}{separator}region={region}")

    def sign_in(self, user: str = "", password: str | None = None) -> None:
        self.driver.delete_all_cookies()
        self.driver.get(self.server.base_url() + "/console/login")
        self.fill("login-account", "root")
        self.fill("login-user", user)
        self.fill("login-password", password or (USER_PASSWORD if user else self.server.root_password))
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button[type=submit]"))
        self.wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "header nav")))

    def sign_out(self) -> None:
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "form[action='/console/logout'] button"))
        self.wait.until(expected_conditions.presence_of_element_located((By.ID, "login-password")))

    # forms ------------------------------------------------------------------------------

    def current_page(self) -> WebElement:
        return self.driver.find_element(By.TAG_NAME, "html")

    def wait_for_page_after(self, page: WebElement) -> None:
        """Waits until `page` (an <html> element) is replaced and its successor loaded."""

        def replaced(_driver) -> bool:
            try:
                page.tag_name
                return False
            except WebDriverException:
                # Stale, or (mid-navigation) "does not belong to the document".
                return True

        self.wait.until(replaced)
        self.wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")

    def submit(self, button: WebElement) -> None:
        """Clicks a button that sends a form and waits for the page that answers it."""
        page = self.current_page()
        button.click()
        self.wait_for_page_after(page)

    def fill(self, element_id: str, text: str) -> None:
        element = self.driver.find_element(By.ID, element_id)
        element.clear()
        if text:
            # send_keys types one character at a time; long texts are set directly.
            if len(text) > 60:
                self.driver.execute_script("arguments[0].value = arguments[1];", element, text)
            else:
                element.send_keys(text)

    def value(self, element_id: str) -> str:
        return self.driver.find_element(By.ID, element_id).get_attribute("value") or ""

    def open_dialog(self, button: WebElement, dialog_id: str) -> WebElement:
        button.click()
        return self.wait.until(expected_conditions.visibility_of_element_located((By.ID, dialog_id)))

    def open_create_dialog(self) -> WebElement:
        return self.open_dialog(self.driver.find_element(By.ID, "create-button"), "create-dialog")

    def fill_create_form(self, description: str = "", custom: bool = False, access_ips: str = "", models: list[str] | None = None) -> None:
        self.open_create_dialog()
        if custom:
            self.driver.find_element(By.ID, "create-permission-custom").click()
            self.fill("create-ips", access_ips)
            if models is not None:
                self.driver.find_element(By.ID, "create-models-selected").click()
                for model in models:
                    self.driver.find_element(By.CSS_SELECTOR, f"#create-dialog input[name=model][value='{model}']").click()
        self.fill("create-description", description)

    def submit_create_form(self) -> None:
        self.submit(self.driver.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]"))

    def create_key(self, description: str = "", custom: bool = False, access_ips: str = "", models: list[str] | None = None) -> str:
        """Creates a key through the dialog; returns the plaintext from the show-once dialog
        (left open)."""
        self.fill_create_form(description, custom, access_ips, models)
        self.submit_create_form()
        return self.read_show_once()

    def read_show_once(self) -> str:
        dialog = self.wait.until(expected_conditions.visibility_of_element_located((By.ID, "show-once")))
        key = dialog.find_element(By.ID, "show-once-key").get_attribute("value")
        return self.server.remember_secret(key)

    def close_show_once(self) -> None:
        self.driver.find_element(By.CSS_SELECTOR, "#show-once [data-close-dialog]").click()
        self.wait.until(lambda driver: not driver.find_elements(By.ID, "show-once"))

    # the key list -----------------------------------------------------------------------

    def key_rows(self) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, "table.keys tbody tr")

    def row_of_key(self, description: str) -> WebElement:
        for row in self.key_rows():
            if row.find_element(By.CSS_SELECTOR, "td[data-label='Description']").text == description:
                return row
        raise AssertionError(f"no key row with description {description!r}")

    def cell(self, row: WebElement, label: str) -> str:
        return row.find_element(By.CSS_SELECTOR, f"td[data-label='{label}']").text

    def row_action(self, description: str, verb: str) -> None:
        """Opens the row's `verb` dialog (Edit, Disable, Enable, Reset, Delete) and confirms it."""
        row = self.row_of_key(description)
        key_id = row.get_attribute("data-key-id")
        dialog_id = f"{verb.lower()}-{key_id}"
        dialog = self.open_dialog(row.find_element(By.CSS_SELECTOR, f"button[data-open-dialog='{dialog_id}']"), dialog_id)
        self.submit(dialog.find_element(By.CSS_SELECTOR, "button[type=submit]"))

    def notice(self) -> str:
        return self.wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, "p.notice"))).text
