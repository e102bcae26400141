"""The audit page's filters in a real browser, at 1280 and 390 px: filtering by action and
actor narrows the rows, Clear brings them back, and no cell's word is broken across lines
(unless it is wider than the whole cell)."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from console_harness import set_viewport

# For each cell, whether one of its words is split over two lines: a word's characters
# laid out on more than one line box.
SPLIT_WORDS = """
const split = [];
for (const cell of document.querySelectorAll('table.audit td')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const re = /\\S+/g;
    let match;
    while ((match = re.exec(node.textContent))) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      const tops = new Set(rects.map(r => Math.round(r.top)));
      const wordWidth = rects.reduce((sum, r) => sum + r.width, 0);
      // Only a word wider than its whole cell may break.
      const style = getComputedStyle(cell);
      const contentWidth = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (tops.size > 1 && wordWidth <= contentWidth) split.push(match[0]);
    }
  }
}
return split;
"""


def audit_actions(console) -> list[str]:
    return [cell.text for cell in console.driver.find_elements(By.CSS_SELECTOR, "table.audit td[data-label='Action']")]


def test_filters_and_no_mid_word_wrapping(console, keygate_server):
    console.sign_in()
    console.create_key(description="browser: audit filters")
    console.close_show_once()
    for width in (1280, 390):
        set_viewport(console.driver, width, 900)
        console.open("/console/audit")
        assert len(set(audit_actions(console))) > 1
        assert console.driver.execute_script(SPLIT_WORDS) == [], width

        console.fill("audit-action", "apikey.create")
        console.fill("audit-actor", "root")
        console.submit(console.driver.find_element(By.CSS_SELECTOR, "#audit-filters button[type=submit]"))
        assert "action=apikey.create" in console.driver.current_url
        actions = audit_actions(console)
        assert actions and set(actions) == {"ApiKey.Create"}, actions
        assert console.driver.execute_script(SPLIT_WORDS) == [], width

        console.submit(console.driver.find_element(By.CSS_SELECTOR, "#audit-filters a.button"))
        assert len(set(audit_actions(console))) > 1
