"""The welcome email's words (``domain/welcome.py``): pure rendering, no network."""

import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest

from services.handlers.domain.mail import Mail
from services.handlers.domain.welcome import message_id, render_welcome, sender_domain

pytestmark = pytest.mark.unit

RESET = "Self-service password reset"
SYNC = "Microsoft 365 password sync"


def render(**overrides: Any) -> Mail:
    fields: dict[str, Any] = {
        "brand": "Demo MSP",
        "to": "alex.smith@customer.example",
        "username": "alex.smith0",
        "display_name": "Alex Smith",
        "self_service_reset": False,
        "m365_sync": False,
        "portal_url": None,
        "from_address": "it-support@demo-msp.example",
        "message_id": "<1@demo-msp.example>",
    }
    return render_welcome(**{**fields, **overrides})


class Page(HTMLParser):
    """The parts of the HTML a reader meets: its text, its links, its tags."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def test_the_message_id_is_the_command_id_at_the_senders_domain() -> None:
    command = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    domain = sender_domain("IT-Support@Demo-MSP.example")
    assert message_id(command, domain) == "<0f8fad5b-d9cb-469f-a165-70867728950e@demo-msp.example>"


def test_it_names_the_brand_greets_by_display_name_and_gives_the_username() -> None:
    mail = render()
    assert mail.subject == "Your new account from Demo MSP is ready"
    assert (mail.to, mail.from_address, mail.message_id) == (
        "alex.smith@customer.example",
        "it-support@demo-msp.example",
        "<1@demo-msp.example>",
    )
    assert mail.text.startswith("Hello Alex Smith,\n")
    assert "Your username: alex.smith0" in mail.text
    assert "Demo MSP" in mail.text
    page = Page(mail.html)
    assert "Welcome, Alex Smith" in page.words
    assert "alex.smith0" in page.words
    assert "Demo MSP has set up your new account." in page.words


@pytest.mark.parametrize("display_name", [None, "", "   "])
def test_without_a_display_name_it_greets_by_username(display_name: str | None) -> None:
    mail = render(display_name=display_name)
    assert mail.text.startswith("Hello alex.smith0,\n")
    assert "Welcome, alex.smith0" in Page(mail.html).words


def test_a_display_name_with_markup_arrives_as_text() -> None:
    mail = render(display_name='Eve <script>alert("x")</script> & <b>Co</b>')
    assert "<script>" not in mail.html
    assert "<b>Co</b>" not in mail.html
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in mail.html
    )
    page = Page(mail.html)
    assert not [tag for tag, _ in page.tags if tag in ("script", "b")]
    assert 'Welcome, Eve <script>alert("x")</script> & <b>Co</b>' in page.words
    assert mail.text.startswith('Hello Eve <script>alert("x")</script> & <b>Co</b>,')  # plain


@pytest.mark.parametrize(
    ("reset", "sync"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_it_lists_what_was_enabled_and_nothing_else(reset: bool, sync: bool) -> None:
    mail = render(self_service_reset=reset, m365_sync=sync)
    words = Page(mail.html).words
    for part in (mail.text, words):
        assert (RESET in part) is reset
        assert (SYNC in part) is sync
        assert ("What is ready for you" in part) is (reset or sync)
    assert ("<ul" in mail.html) is (reset or sync)


def test_the_portal_is_linked_when_there_is_one() -> None:
    url = "https://portal.demo-msp.example/sign-in?from=welcome&x=1"
    mail = render(portal_url=url)
    assert f"Sign in here: {url}" in mail.text
    page = Page(mail.html)
    assert page.links == [url, url]  # the button and the written-out address
    assert "Sign in to the portal" in page.words


@pytest.mark.parametrize("portal_url", [None, "", "javascript:alert(1)", "portal.example"])
def test_no_link_without_an_http_portal(portal_url: str | None) -> None:
    mail = render(portal_url=portal_url)
    assert "Sign in" not in mail.text
    assert Page(mail.html).links == []
    assert "javascript" not in mail.html


def test_the_html_is_self_contained_and_accessible() -> None:
    page = Page(render(self_service_reset=True, portal_url="https://p.example").html)
    html_tag = next(attrs for tag, attrs in page.tags if tag == "html")
    assert html_tag.get("lang") == "en"
    assert [tag for tag, _ in page.tags if tag == "title"]
    assert not [t for t, _ in page.tags if t in ("img", "script", "link", "style", "iframe")]
    sources = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "srcset")]
    assert sources == []
    for tag, attrs in page.tags:
        if tag == "table":
            assert attrs.get("role") == "presentation"  # layout, not data, for screen readers


def test_a_brand_with_a_line_break_cannot_break_the_subject_header() -> None:
    mail = render(brand="Demo\r\nBcc: victim@example.com")
    assert "\n" not in mail.subject
    assert "\r" not in mail.subject
    assert re.fullmatch(
        r"Your new account from Demo Bcc: victim@example\.com is ready", mail.subject
    )
