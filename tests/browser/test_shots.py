"""The screenshot helper retries Chromium's transient capture failure, and only that one."""

from __future__ import annotations

from typing import Any

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


class _Page:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.calls = 0
        self.waits = 0

    def screenshot(self, path: str, full_page: bool) -> None:
        self.calls += 1
        if self.failures:
            raise playwright.Error(self.failures.pop(0))

    def wait_for_timeout(self, _ms: int) -> None:
        self.waits += 1


def test_a_transient_capture_failure_is_retried(shots: Any) -> None:
    page = _Page(["Page.screenshot: Protocol error (Page.captureScreenshot): Unable to capture screenshot"])
    assert shots(page, "retried").name == "retried.png"
    assert page.calls == 2 and page.waits == 1


def test_other_failures_and_a_third_transient_one_are_raised(shots: Any) -> None:
    with pytest.raises(playwright.Error, match="Target closed"):
        shots(_Page(["Target closed"]), "other")
    transient = "Unable to capture screenshot"
    page = _Page([transient, transient, transient])
    with pytest.raises(playwright.Error, match=transient):
        shots(page, "gives-up")
    assert page.calls == 3
