"""Every console page, at 1280 and at 390 pixels wide: each control has an accessible
name (a label, or aria-label), each dialog a title, no id is used twice, and nothing
makes the page scroll sideways on a phone."""

from __future__ import annotations

import pytest

from console_harness import set_viewport

PAGES = ["/console/keys", "/console/users", "/console/workspaces", "/console/audit"]

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


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_labelled_and_fits(console, width):
    console.sign_in()
    console.create_key(description="layout: a key", custom=True, access_ips="10.0.0.0/8", models=["demo-echo"])
    console.close_show_once()
    set_viewport(console.driver, width, 900)
    try:
        for path in PAGES:
            console.open(path)
            problems = console.driver.execute_script(ACCESSIBILITY_PROBLEMS)
            assert problems == [], f"{path}: {problems}"
            scroll_width = console.driver.execute_script("return document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px"
    finally:
        set_viewport(console.driver, 1280, 900)
        console.open("/console/keys")
        console.row_action("layout: a key", "Delete")
        assert "deleted" in console.notice()
