"""A sub-workspace's models granted and revoked one at a time on the Workspaces page in a
real browser, with the gateway's answer to a key of that workspace after each change."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from console_harness import gateway_chat


def workspace_panel(console, workspace_id: str):
    return console.driver.find_element(By.CSS_SELECTOR, f"section[data-workspace-id='{workspace_id}']")


def test_grant_and_revoke_a_model(console, keygate_server):
    console.sign_in()
    console.open("/console/workspaces")
    console.fill("workspace-name", "team-grants")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-workspace-form button[type=submit]"))
    panel = console.driver.find_element(By.XPATH, "//section[contains(@class,'workspace')][.//h2[normalize-space()='team-grants']]")
    workspace_id = panel.get_attribute("data-workspace-id")
    assert "None yet." in panel.find_element(By.CSS_SELECTOR, ".no-grants").text

    # A key of the workspace, made before any grant: the panel says it is refused until a
    # model is granted, and the gateway refuses it.
    console.open("/console/keys")
    console.open_create_dialog()
    Select(console.driver.find_element(By.ID, "create-workspace")).select_by_value(workspace_id)
    console.fill("create-description", "browser: team-grants key")
    console.submit_create_form()
    key = console.read_show_once()
    assert "Model access denied" in console.driver.find_element(By.CSS_SELECTOR, "#show-once .model-not-granted").text
    console.close_show_once()
    assert gateway_chat(keygate_server, key).status == 403

    console.open("/console/workspaces")
    Select(workspace_panel(console, workspace_id).find_element(By.ID, f"grant-model-{workspace_id}")).select_by_value("demo-echo")
    console.submit(workspace_panel(console, workspace_id).find_element(By.CSS_SELECTOR, "form.grant-form button[type=submit]"))
    assert "granted" in console.notice()
    assert gateway_chat(keygate_server, key).status == 200
    granted = workspace_panel(console, workspace_id).find_element(By.CSS_SELECTOR, "ul.grants li[data-model='demo-echo']")

    console.submit(granted.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "revoked" in console.notice()
    assert not workspace_panel(console, workspace_id).find_elements(By.CSS_SELECTOR, "ul.grants li[data-model='demo-echo']")
    assert gateway_chat(keygate_server, key).status == 403
