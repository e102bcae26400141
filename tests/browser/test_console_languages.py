"""The console in English and Chinese in a real browser: the language of the browser's
Accept-Language, the switch in the header (remembered across pages), every page in each
language (the key list, the create flow, Workspaces, the audit log, the Usage page, a key's
page with its limits, Users and AccessKeys, the password page, a refused form, a page that
does not exist, and the script's copy and download notices), and no page wider than the
screen in either language at 1280 and 390 px. With KEYGATE_UPDATE_SCREENSHOTS=1 it makes
the screenshots of docs/CONSOLE.md: the key list with its search form, the create flow with
the "how to call" panel, a workspace's grants, the audit filters, the Usage page and a
key's page, at both widths, in both languages (console-<page>-<width>-<language>.png)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import shutil

import time

from console_harness import Console, gateway_chat, new_browser, page_width, set_viewport

WIDTHS = ((1280, 900), (390, 844))
USAGE_WAIT_SECONDS = 20

# What each page says in each language: its heading, and texts that must be on it.
TEXTS = {
    "en": {
        "usage": ("Usage", ["Tokens over time", "Requests over time", "Top API keys", "Last 24 hours"]),
        "key": ("API key ", ["Details", "Limits", "Usage", "Change the limits", "All recorded usage"]),
        "users": ("Users", ["Create a RAM user", "RAM users", "AccessKeys"]),
        "password": ("Change your password", ["Current password", "New password again"]),
        "refused": "Form refused",
        "not_found": "404 Not found",
        "copied": ("Copied to the clipboard.", "Could not copy: select the text and press Ctrl+C (Cmd+C on a Mac)."),
        "downloaded": "Downloaded ",
        "requests": "Requests",
    },
    "zh": {
        "usage": ("用量", ["Token 用量趋势", "请求数趋势", "用量最多的 API Key", "最近 24 小时"]),
        "key": ("API Key ", ["详情", "限制", "用量", "修改限制", "全部已记录的用量"]),
        "users": ("用户", ["创建 RAM 用户", "RAM 用户", "AccessKey"]),
        "password": ("修改密码", ["当前密码", "再次输入新密码"]),
        "refused": "表单被拒绝",
        "not_found": "404 未找到",
        "copied": ("已复制到剪贴板。", "复制失败：请选中文本后按 Ctrl+C（Mac 上按 Cmd+C）。"),
        "downloaded": "已下载 ",
        "requests": "请求数",
    },
}


def html_lang(console) -> str:
    return console.driver.find_element(By.TAG_NAME, "html").get_attribute("lang")


def switch_to(console, code: str) -> None:
    """Clicks the header's link to the language `code`."""
    console.submit(console.driver.find_element(By.CSS_SELECTOR, f".language-switch a[href*='lang={code}']"))


def test_the_browser_language_chooses_and_the_switch_is_remembered(keygate_server, download_dir):
    driver = new_browser(download_dir, accept_language="zh-CN,zh")
    try:
        console = Console(driver, keygate_server)
        driver.get(keygate_server.base_url() + "/console/login")
        assert html_lang(console) == "zh-CN"
        assert driver.find_element(By.TAG_NAME, "h1").text == "登录 keygate"
        console.sign_in()
        assert html_lang(console) == "zh-CN"
        assert driver.find_element(By.CSS_SELECTOR, "header nav a[aria-current=page]").text == "API Key"

        switch_to(console, "en")
        assert html_lang(console) == "en"
        assert driver.find_element(By.CSS_SELECTOR, "header nav a[aria-current=page]").text == "API keys"
        console.open("/console/audit")
        assert html_lang(console) == "en" and driver.find_element(By.TAG_NAME, "h1").text == "Audit log"
        switch_to(console, "zh")
        assert driver.current_url.endswith("/console/audit?region=ap-southeast-1")
        assert driver.find_element(By.TAG_NAME, "h1").text == "审计日志"
    finally:
        driver.quit()
        shutil.rmtree(driver.keygate_user_data_dir, ignore_errors=True)


def test_every_page_in_both_languages_and_the_screenshots(console, keygate_server, save_screenshot):
    console.sign_in()
    # A sub-workspace with a grant, for the Workspaces page.
    console.open("/console/workspaces")
    console.fill("workspace-name", "team-docs")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-workspace-form button[type=submit]"))
    panel = console.driver.find_element(By.XPATH, "//section[contains(@class,'workspace')][.//h2[normalize-space()='team-docs']]")
    workspace_id = panel.get_attribute("data-workspace-id")
    Select(panel.find_element(By.ID, f"grant-model-{workspace_id}")).select_by_value("demo-echo")
    console.submit(panel.find_element(By.CSS_SELECTOR, "form.grant-form button[type=submit]"))

    # A key, so that the key list shows its search form even on a fresh server.
    console.open("/console/keys")
    console.create_key(description="docs: search")
    console.close_show_once()

    for language, key_heading in (("en", "API keys"), ("zh", "API Key")):
        console.driver.get(f"{keygate_server.base_url()}/console/language?lang={language}&back=/console/keys")
        for width, height in WIDTHS:
            set_viewport(console.driver, width, height)
            console.open("/console/keys")
            assert console.driver.find_element(By.TAG_NAME, "h1").text == key_heading
            assert console.driver.find_element(By.ID, "keys-search").is_displayed()
            assert page_width(console.driver) <= width, (language, width, "keys")
            save_screenshot(console.driver, f"console-keys-{width}-{language}.png")

            console.fill_create_form(description=f"docs: {language} {width}")
            save_screenshot(console.driver, f"console-create-{width}-{language}.png")
            console.submit_create_form()
            console.read_show_once()
            panel = console.driver.find_element(By.ID, "show-once-how-to-call")
            assert panel.find_element(By.ID, "show-once-base-url-openai").text.endswith("/compatible-mode/v1")
            console.driver.execute_script("arguments[0].scrollIntoView()", panel)
            save_screenshot(console.driver, f"console-how-to-call-{width}-{language}.png")
            console.close_show_once()

            console.open("/console/workspaces")
            section = console.driver.find_element(By.CSS_SELECTOR, f"section[data-workspace-id='{workspace_id}']")
            assert section.find_elements(By.CSS_SELECTOR, "ul.grants li[data-model='demo-echo']")
            assert page_width(console.driver) <= width, (language, width, "workspaces")
            console.driver.execute_script("arguments[0].scrollIntoView()", section)
            save_screenshot(console.driver, f"console-workspace-grants-{width}-{language}.png")

            console.open("/console/audit?action=apikey.create")
            assert console.driver.find_element(By.ID, "audit-action").get_attribute("value") == "apikey.create"
            assert page_width(console.driver) <= width, (language, width, "audit")
            save_screenshot(console.driver, f"console-audit-filters-{width}-{language}.png")


def headings(console) -> list[str]:
    return [element.text for element in console.driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3") if element.text]


def page_text(console) -> str:
    return console.driver.find_element(By.TAG_NAME, "body").get_attribute("textContent")


def test_usage_key_users_and_refused_pages_in_both_languages(console, keygate_server, save_screenshot):
    console.sign_in()
    for language, texts in TEXTS.items():
        console.driver.get(f"{keygate_server.base_url()}/console/language?lang={language}&back=/console/keys")
        set_viewport(console.driver, 1280, 900)

        # The show-once dialog's copy and download notices, from the script.
        description = f"languages: {language}"
        key = console.create_key(description=description)
        # "(id 12, Default workspace)" beside the key.
        key_id = console.driver.find_element(By.CSS_SELECTOR, "label[for=show-once-key] .muted").text.split()[1].rstrip(",")
        status = console.driver.find_element(By.ID, "show-once-status")
        console.driver.find_element(By.CSS_SELECTOR, "#show-once [data-copy-target='show-once-key']").click()
        console.wait.until(lambda driver: status.text)
        assert status.text in texts["copied"], status.text
        console.driver.find_element(By.CSS_SELECTOR, "#show-once [data-download-target='show-once-key']").click()
        console.wait.until(lambda driver: status.text.startswith(texts["downloaded"]))
        console.close_show_once()
        for _ in range(3):
            assert gateway_chat(keygate_server, key).status == 200

        # The key's page, once its usage is written.
        console.open(f"/console/keys/{key_id}")
        key_heading, key_texts = texts["key"]
        deadline = time.monotonic() + USAGE_WAIT_SECONDS
        while "3" not in [item.text for item in console.driver.find_elements(By.CSS_SELECTOR, "#key-recorded dd")][:1]:
            assert time.monotonic() < deadline, "the key's usage was not written"
            time.sleep(0.3)
            console.driver.refresh()
        key_page = console.driver.current_url
        for width, height in WIDTHS:
            set_viewport(console.driver, width, height)
            console.driver.get(key_page)
            assert console.driver.find_element(By.TAG_NAME, "h1").text.startswith(key_heading)
            assert set(key_texts) <= set(headings(console)), headings(console)
            assert console.driver.find_element(By.CSS_SELECTOR, "#key-recorded dt").text == texts["requests"]
            assert page_width(console.driver) <= width, (language, width, "key")
            save_screenshot(console.driver, f"console-key-page-{width}-{language}.png")

            # The Usage page.
            console.open("/console/usage?range=24h")
            usage_heading, usage_texts = texts["usage"]
            assert console.driver.find_element(By.TAG_NAME, "h1").text == usage_heading
            shown = headings(console) + [console.driver.find_element(By.CSS_SELECTOR, ".range-choice a[aria-current=page]").text]
            assert set(usage_texts) <= set(shown), shown
            assert page_width(console.driver) <= width, (language, width, "usage")
            save_screenshot(console.driver, f"console-usage-{width}-{language}.png")

            # Users and AccessKeys, and the password page.
            for path, name in (("/console/users", "users"), ("/console/password", "password")):
                console.open(path)
                heading, page_texts = texts[name]
                assert console.driver.find_element(By.TAG_NAME, "h1").text == heading
                assert set(page_texts) <= set(headings(console) + [label.text for label in console.driver.find_elements(By.TAG_NAME, "label")]), path
                assert page_width(console.driver) <= width, (language, width, name)

        # A form sent without its session's token, and a page that does not exist.
        console.open("/console/password")
        console.driver.execute_script("document.querySelector('#password-form input[name=csrf_token]').remove()")
        console.submit(console.driver.find_element(By.CSS_SELECTOR, "#password-form button[type=submit]"))
        assert console.driver.find_element(By.TAG_NAME, "h1").text == texts["refused"]
        console.driver.get(keygate_server.base_url() + "/console/no-such-page")
        assert console.driver.find_element(By.TAG_NAME, "h1").text == texts["not_found"]
        assert console.driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == ("zh-CN" if language == "zh" else "en")
        assert ("Back to the console" in page_text(console)) == (language == "en")
