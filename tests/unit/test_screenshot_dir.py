"""``make test`` changes no tracked file: the browser tests' screenshots go to the
git-ignored ``artifacts/screenshots/``; only ``make screenshots``
(``UPDATE_SCREENSHOTS=1``) rewrites the README's ``docs/screenshots/``."""

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ui import support

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


class FakePage:
    """Records where ``page.screenshot`` was asked to write."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def screenshot(self, *, path: str, **_: Any) -> bytes:
        self.paths.append(Path(path))
        return b""


@pytest.mark.parametrize("value", [None, "", "0", "false"])
def test_test_runs_write_screenshots_to_an_ignored_folder(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("UPDATE_SCREENSHOTS", raising=False)
    else:
        monkeypatch.setenv("UPDATE_SCREENSHOTS", value)
    folder = support.screenshot_dir()
    assert folder == REPO / "artifacts" / "screenshots"
    assert "artifacts/" in (REPO / ".gitignore").read_text().splitlines()


def test_update_screenshots_rewrites_the_readme_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPDATE_SCREENSHOTS", "1")
    assert support.screenshot_dir() == REPO / "docs" / "screenshots"


@pytest.mark.parametrize(("update", "folder"), [("", "artifacts"), ("1", "docs")])
def test_screenshot_saves_into_that_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, update: str, folder: str
) -> None:
    monkeypatch.setattr(support, "TEST_SCREENSHOTS", tmp_path / "artifacts")
    monkeypatch.setattr(support, "README_SCREENSHOTS", tmp_path / "docs")
    monkeypatch.setenv("UPDATE_SCREENSHOTS", update)
    page = FakePage()

    saved = support.screenshot(page, "automatic-imports")  # type: ignore[arg-type]

    assert page.paths == [saved] == [tmp_path / folder / "automatic-imports.png"]
    assert saved.parent.is_dir()


def test_make_screenshots_refreshes_them() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "\nscreenshots:" in makefile
    recipe = makefile.split("\nscreenshots:", 1)[1].split("\n\n", 1)[0]
    assert "UPDATE_SCREENSHOTS=1" in recipe
    assert "tests/e2e/ui" in recipe
