"""The admin UI's files: what is served, and that they ship in the wheel and load nothing
from elsewhere."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from services.policy_service.ui.routes import CONTENT_TYPES, STATIC_DIR, resolve_asset

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


def test_index_and_assets_resolve() -> None:
    assert resolve_asset("") == (STATIC_DIR / "index.html").resolve()
    assert resolve_asset("app.js") == (STATIC_DIR / "app.js").resolve()


@pytest.mark.parametrize(
    "path",
    [
        "../routes.py",
        "..",
        "a/../../routes.py",
        "/etc/passwd",
        ".hidden.js",
        "x//y.js",
        "nope.js",
        "app.js\\..\\x",
        "__init__.py",
        "../static/app.js",
    ],
)
def test_nothing_outside_the_static_files_resolves(path: str) -> None:
    assert resolve_asset(path) is None


def test_every_static_file_is_package_data_and_has_a_served_type() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["services"]
    for file in FILES:
        relative = file.relative_to(ROOT / "services").as_posix()
        # setuptools' "**/static/*" takes the files directly in a static/ folder only.
        assert any(
            fnmatch(relative, p) and "/" not in relative.split("static/", 1)[1] for p in patterns
        ), f"{relative} would not ship in the wheel"
        assert file.suffix in CONTENT_TYPES, file.name


def test_modules_import_only_siblings_and_nothing_comes_from_elsewhere() -> None:
    names = {p.name for p in FILES}
    for file in FILES:
        if file.suffix not in {".js", ".css", ".html"}:
            continue
        text = file.read_text()
        assert not re.search(r"(?<![\w.])(https?:)?//[\w-]+\.[\w.-]+/", text), (
            f"{file.name} refers to another origin"
        )
        for target in re.findall(r'from "\./([^"]+)"', text):
            assert target in names, f"{file.name} imports a missing {target}"
