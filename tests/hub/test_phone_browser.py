"""Every form readable at phone width, in real headless Chromium: each label's text sits directly above
its own control, and no page scrolls sideways (issue 25)."""

from __future__ import annotations

import pytest

from tests.hub.test_browser import db_name, log_in

pytestmark = pytest.mark.browser

LAYOUT = """
const out = [];
for (const label of document.querySelectorAll('main form label')) {
  const control = label.querySelector('input:not([type=hidden]):not([type=checkbox]), select');
  if (!control || label.offsetParent === null) continue;
  const l = label.getBoundingClientRect(), c = control.getBoundingClientRect();
  const range = document.createRange();
  range.setStart(label.firstChild, 0);
  range.setEnd(label.firstChild, Math.max(0, label.firstChild.textContent.trimEnd().length));
  const t = range.getBoundingClientRect();
  out.push({name: control.name, textBottom: t.bottom, textLeft: t.left, controlTop: c.top,
            controlLeft: c.left, controlRight: c.right, labelLeft: l.left});
}
return out;
"""


@pytest.mark.parametrize("path", ["/events", "/counts", "/rollouts", "/account/tokens", "/account/password",
                                  "/admin/users", "/devices/credentials"])
def test_labels_sit_above_their_own_inputs_on_a_phone(live_server, browser, auth, artifacts, database_url,
                                                      path):
    log_in(browser, live_server, auth, "phone-admin", "admin")
    browser.set_window_size(390, 844)
    browser.get(live_server.url + path)
    boxes = browser.execute_script(LAYOUT)
    assert boxes, f"no labelled controls on {path}"
    for box in boxes:
        assert box["textBottom"] <= box["controlTop"] + 1, box  # the text is above its control ...
        assert abs(box["textLeft"] - box["controlLeft"]) < 4, box  # ... and starts where it starts
        assert box["controlRight"] <= 390, box
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.save_screenshot(str(artifacts / f"phone{path.replace('/', '-')}-{db_name(database_url)}.png"))


def test_the_api_document_is_a_page_linked_from_the_nav(live_server, browser, auth, artifacts, database_url):
    from selenium.webdriver.common.by import By

    log_in(browser, live_server, auth)
    browser.find_element(By.LINK_TEXT, "API").click()
    assert browser.current_url.endswith("/api/v1/docs")
    ops = browser.find_elements(By.CSS_SELECTOR, "#api-operations article.op")
    titles = [" ".join(o.find_element(By.TAG_NAME, "h3").text.split()) for o in ops]
    assert "GET /events" in titles and "PUT /devices/{device_id}/config" in titles
    assert browser.find_element(By.ID, "schema-EventOut").text.count("\n") > 10
    browser.save_screenshot(str(artifacts / f"api-docs-{db_name(database_url)}.png"))
