"""The console in English and Chinese in a real browser: the language of the browser's
Accept-Language, the switch in the header (remembered across pages), and no page wider
than the screen in either language at 1280 and 390 px. With KEYGATE_UPDATE_SCREENSHOTS=1
it makes the screenshots of docs/CONSOLE.md: the key list, the create flow with the "how
to call" panel, a workspace's grants and the audit filters, at both widths, in both
languages (console-<page>-<width>-<language>.png)."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import shutil

from console_harness import Console, new_browser, page_width, set_viewport

WIDTHS = ((1280, 900), (390, 844))


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

    for language, key_heading in (("en", "API keys"), ("zh", "API Key")):
        console.driver.get(f"{keygate_server.base_url()}/console/language?lang={language}&back=/console/keys")
        for width, height in WIDTHS:
            set_viewport(console.driver, width, height)
            console.open("/console/keys")
            assert console.driver.find_element(By.TAG_NAME, "h1").text == key_heading
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
