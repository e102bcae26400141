"""Form errors in the Create dialog: a bad CIDR, a 201-character description and a
reached quota are each shown next to the field (or the form) that caused them, the dialog
opens again, and every other input keeps what was entered."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from console_harness import CLASSIC_KEY_PATTERN, CLASSIC_REGION, CLASSIC_REGION_KEY_LIMIT


def field_error(console, field_id: str) -> str:
    """The error under a field, after checking that the field points at it."""
    field = console.driver.find_element(By.ID, field_id)
    assert field.get_attribute("aria-invalid") == "true", field_id
    assert f"{field_id}-error" in (field.get_attribute("aria-describedby") or ""), field_id
    return console.driver.find_element(By.ID, f"{field_id}-error").text


def assert_create_dialog_open(console) -> None:
    console.wait.until(lambda driver: driver.find_element(By.ID, "create-dialog").is_displayed())


def test_bad_cidr_and_long_description_are_shown_at_their_fields(console):
    console.sign_in()
    keys_before = len(console.key_rows())
    console.fill_create_form(description="form errors: kept", custom=True, access_ips="10.0.0.0/8\n10.1.2.0/40", models=["demo-echo"])
    console.submit_create_form()

    assert_create_dialog_open(console)
    message = field_error(console, "create-ips")
    assert "10.1.2.0/40" in message and "prefix length" in message, message
    assert not console.driver.find_elements(By.ID, "create-description-error")
    assert console.value("create-ips") == "10.0.0.0/8\n10.1.2.0/40"
    assert console.value("create-description") == "form errors: kept"
    assert console.driver.find_element(By.ID, "create-permission-custom").is_selected()
    assert console.driver.find_element(By.ID, "create-models-selected").is_selected()
    assert console.driver.find_element(By.CSS_SELECTOR, "#create-dialog input[name=model][value='demo-echo']").is_selected()
    assert not console.driver.find_element(By.CSS_SELECTOR, "#create-dialog input[name=model][value='demo-embed']").is_selected()
    assert not console.driver.find_elements(By.ID, "show-once")

    # A description of 201 characters, with the whitelist fixed.
    console.fill("create-ips", "10.0.0.0/8")
    console.fill("create-description", "d" * 201)
    console.submit_create_form()
    assert_create_dialog_open(console)
    message = field_error(console, "create-description")
    assert "200" in message and "201" in message, message
    assert not console.driver.find_elements(By.ID, "create-ips-error")
    assert console.value("create-description") == "d" * 201
    assert console.value("create-ips") == "10.0.0.0/8"
    assert console.driver.find_element(By.ID, "create-permission-custom").is_selected()

    # Nothing was created by the refused forms; the corrected one works.
    console.driver.find_element(By.CSS_SELECTOR, "#create-dialog [data-close-dialog]").click()
    assert len(console.key_rows()) == keys_before
    console.open_create_dialog()
    console.fill("create-description", "form errors: fixed")
    console.submit_create_form()
    console.read_show_once()
    console.close_show_once()
    assert "Models: demo-echo" in console.cell(console.row_of_key("form errors: fixed"), "Permission")
    console.row_action("form errors: fixed", "Delete")
    assert "deleted" in console.notice()


def test_a_reached_quota_is_shown_in_the_form_with_the_inputs_kept(console):
    # carol, a key-manager, works in US (Virginia), where the limit counts each owner's
    # keys and this suite lowers it to CLASSIC_REGION_KEY_LIMIT.
    console.sign_in(user="carol")
    page = console.current_page()
    Select(console.driver.find_element(By.ID, "region-select")).select_by_value(CLASSIC_REGION)
    console.wait_for_page_after(page)
    console.wait.until(lambda driver: driver.current_url.endswith(f"region={CLASSIC_REGION}"))
    page_text = console.driver.find_element(By.TAG_NAME, "main").text
    assert "cannot be disabled or reset" in page_text, page_text

    for index in range(CLASSIC_REGION_KEY_LIMIT):
        console.fill_create_form(description=f"quota: key {index}")
        assert not console.driver.find_elements(By.ID, "create-permission-custom"), "Custom is not offered in US (Virginia)"
        assert "not offered" in console.driver.find_element(By.ID, "create-dialog").text
        console.submit_create_form()
        assert CLASSIC_KEY_PATTERN.match(console.read_show_once())
        console.close_show_once()

    workspace = Select(console.driver.find_element(By.ID, "create-workspace"))
    console.fill_create_form(description="quota: one too many")
    chosen_workspace = workspace.first_selected_option.get_attribute("value")
    console.submit_create_form()
    assert_create_dialog_open(console)
    message = console.driver.find_element(By.ID, "create-form-error").text
    assert f"limit of this region ({CLASSIC_REGION_KEY_LIMIT})" in message, message
    assert console.value("create-description") == "quota: one too many"
    assert Select(console.driver.find_element(By.ID, "create-workspace")).first_selected_option.get_attribute("value") == chosen_workspace
    assert len(console.key_rows()) == CLASSIC_REGION_KEY_LIMIT
    # No Disable or Reset where the region has none.
    assert not console.driver.find_elements(By.CSS_SELECTOR, "button[data-open-dialog^='disable-'], button[data-open-dialog^='reset-']")
