"""The pages for the account and admin RAM users: users (create with a role, disable,
enable, delete, an AccessKey shown once), workspaces (create, model grants, members,
applications) and the audit log."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from console_harness import USER_PASSWORD, gateway_chat


def user_row(console, name: str):
    return console.driver.find_element(By.CSS_SELECTOR, f"tr[data-user='{name}']")


def confirm(console, dialog_id: str) -> None:
    button = console.driver.find_element(By.CSS_SELECTOR, f"button[data-open-dialog='{dialog_id}']")
    dialog = console.open_dialog(button, dialog_id)
    console.submit(dialog.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def test_users_access_keys_workspaces_and_audit(console, keygate_server):
    console.sign_in()
    console.open("/console/users")

    # A refused form keeps the name and role and says what is wrong, at the field.
    console.fill("user-name", "dave")
    Select(console.driver.find_element(By.ID, "user-role")).select_by_value("key-manager")
    console.fill("user-password", "short")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-user-form button[type=submit]"))
    assert "8 to 256" in console.driver.find_element(By.ID, "user-password-error").text
    assert console.value("user-name") == "dave"
    assert Select(console.driver.find_element(By.ID, "user-role")).first_selected_option.get_attribute("value") == "key-manager"
    console.fill("user-password", USER_PASSWORD)
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-user-form button[type=submit]"))
    assert "created" in console.notice()
    assert console.cell(user_row(console, "dave"), "Role") == "key-manager"

    # An AccessKey for dave, its secret shown once.
    Select(console.driver.find_element(By.ID, "access-key-owner")).select_by_value("dave")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-access-key-form button[type=submit]"))
    secret = console.read_show_once()
    assert len(secret) == 30 and secret.isalnum()
    access_key_id = console.value("show-once-access-key-id")
    assert access_key_id.startswith("LTAI")
    console.close_show_once()
    assert secret not in console.driver.page_source
    assert access_key_id in console.driver.find_element(By.CSS_SELECTOR, "table.access-keys").text

    # A workspace with one model and dave as its member.
    console.open("/console/workspaces")
    console.fill("workspace-name", "team-search")
    console.submit(console.driver.find_element(By.CSS_SELECTOR, "#create-workspace-form button[type=submit]"))
    assert "created" in console.notice()
    panel = console.driver.find_element(By.XPATH, "//section[contains(@class,'workspace')][.//h2[normalize-space()='team-search']]")
    workspace_id = panel.get_attribute("data-workspace-id")
    confirm_models = f"models-{workspace_id}"
    dialog = console.open_dialog(panel.find_element(By.CSS_SELECTOR, f"button[data-open-dialog='{confirm_models}']"), confirm_models)
    dialog.find_element(By.CSS_SELECTOR, "input[name=model][value='demo-echo']").click()
    console.submit(dialog.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "models were saved" in console.notice()
    panel = console.driver.find_element(By.CSS_SELECTOR, f"section[data-workspace-id='{workspace_id}']")
    assert "demo-echo" in panel.text
    Select(panel.find_element(By.ID, f"add-member-{workspace_id}")).select_by_value("dave")
    console.submit(panel.find_element(By.CSS_SELECTOR, f"form[action*='{workspace_id}/members'] button[type=submit]"))
    assert "added" in console.notice()
    assert "dave" in console.driver.find_element(By.CSS_SELECTOR, f"section[data-workspace-id='{workspace_id}'] ul.members").text

    # dave creates a key in the new workspace; it may call the granted model only.
    console.sign_out()
    console.sign_in(user="dave")
    console.open_create_dialog()
    Select(console.driver.find_element(By.ID, "create-workspace")).select_by_value(workspace_id)
    console.fill("create-description", "admin: team-search key")
    console.submit_create_form()
    key = console.read_show_once()
    console.close_show_once()
    assert gateway_chat(keygate_server, key).status == 200
    assert gateway_chat(keygate_server, key, model="demo-embed").status == 403

    # Disabling dave stops its key and its session; enabling brings the key back.
    console.sign_out()
    console.sign_in()
    console.open("/console/users")
    confirm(console, "disable-user-dave")
    assert "disabled" in console.notice()
    assert console.cell(user_row(console, "dave"), "Status") == "Disabled"
    assert gateway_chat(keygate_server, key).status == 401
    confirm(console, "enable-user-dave")
    assert "enabled" in console.notice()
    assert gateway_chat(keygate_server, key).status == 200

    # The audit log has it all, without the secrets.
    console.open("/console/audit")
    audit_text = console.driver.find_element(By.CSS_SELECTOR, "table.audit").text
    for action in ("User.Create", "AccessKey.Create", "Workspace.Create", "Workspace.UpdateModelPermissions", "Workspace.AddMember", "User.Disable", "User.Enable", "ApiKey.Create"):
        assert action in audit_text, action
    assert key not in console.driver.page_source and secret not in console.driver.page_source

    # Deleting dave deletes its key.
    console.open("/console/users")
    confirm(console, "delete-user-dave")
    assert "deleted" in console.notice()
    assert not console.driver.find_elements(By.CSS_SELECTOR, "tr[data-user='dave']")
    assert gateway_chat(keygate_server, key).status == 401
