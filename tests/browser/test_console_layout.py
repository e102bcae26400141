"""Every console page, at 1280 and at 390 pixels wide: each control has an accessible
name (a label, or aria-label), each dialog a title, no id is used twice, and nothing
makes the page scroll sideways on a phone."""

from __future__ import annotations

import pytest

from console_harness import accessibility_problems, page_width, set_viewport

PAGES = ["/console/keys", "/console/usage", "/console/users", "/console/workspaces", "/console/audit"]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_is_labelled_and_fits(console, width):
    console.sign_in()
    console.create_key(description="layout: a key", custom=True, access_ips="10.0.0.0/8", models=["demo-echo"])
    console.close_show_once()
    set_viewport(console.driver, width, 900)
    try:
        for path in PAGES:
            console.open(path)
            problems = accessibility_problems(console.driver)
            assert problems == [], f"{path}: {problems}"
            scroll_width = page_width(console.driver)
            assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px"
    finally:
        set_viewport(console.driver, 1280, 900)
        console.open("/console/keys")
        console.row_action("layout: a key", "Delete")
        assert "deleted" in console.notice()
