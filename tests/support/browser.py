"""Waiting on pages that redraw themselves (live lists, charts, the camera view)."""

from __future__ import annotations

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait


def live_wait(browser, timeout: float) -> WebDriverWait:
    """An element found a moment ago may be replaced by the page's next refresh before its text is read:
    that is "not yet", not a failure (a CI run failed on it: StaleElementReferenceException on a chart's
    legend, redrawn while the test read it)."""
    return WebDriverWait(
        browser, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )
