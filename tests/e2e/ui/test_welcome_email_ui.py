"""The welcome email's HTML part in a real browser: what a reader sees, its contrast, and
the ``welcome-email`` screenshot of the README.

No policy service is needed: the HTML comes straight from ``render_welcome`` and is
loaded with ``set_content`` into a context of this test (the package's Chromium), in
which any request at all fails the test (the email has no external resources).
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from services.handlers.domain.welcome import render_welcome

from .support import VIEWPORT, screenshot

PORTAL = "https://portal.demo-msp.example"
MIN_CONTRAST = 4.5  # WCAG 2.x AA, normal text

CONTRASTS = """
() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    out.push([el.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
  }
  return out;
}
"""


@pytest.fixture
def email_page(browser: Browser) -> Iterator[Page]:
    """A tab of a fresh 1280x800 context that records every request it would make."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    requests: list[str] = []
    errors: list[str] = []

    def record(request: Request) -> None:
        requests.append(request.url)

    tab.on("request", record)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert requests == [], f"the email loaded {requests}"
    assert not errors, errors


def test_the_welcome_email_reads_well_in_a_browser(email_page: Page) -> None:
    mail = render_welcome(
        brand="Demo MSP",
        to="alex.smith@contoso.example.net",
        username="alex.smith0",
        display_name="Alex Smith",
        self_service_reset=True,
        m365_sync=True,
        portal_url=PORTAL,
        from_address="it-support@demo-msp.example",
        message_id="<welcome-ui@demo-msp.example>",
    )
    page = email_page
    page.set_content(mail.html)

    expect(page).to_have_title(mail.subject)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Alex Smith")
    expect(page.get_by_text("Demo MSP has set up your new account.")).to_be_visible()
    expect(page.get_by_text("alex.smith0", exact=True)).to_be_visible()
    features = page.get_by_role("listitem")
    expect(features).to_have_count(2)
    expect(features.nth(0)).to_contain_text("Self-service password reset")
    expect(features.nth(1)).to_contain_text("Microsoft 365 password sync")
    button = page.get_by_role("link", name="Sign in to the portal")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("href", PORTAL)
    expect(page.get_by_text("does not contain your password")).to_be_visible()

    contrasts = page.evaluate(CONTRASTS)
    assert contrasts, "no text found"
    poor = [(tag, round(ratio, 2)) for tag, ratio in contrasts if ratio < MIN_CONTRAST]
    assert not poor, f"text below {MIN_CONTRAST}:1 contrast: {poor}"

    path = screenshot(page, "welcome-email")
    assert path.stat().st_size > 0
