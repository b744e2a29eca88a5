"""pyproject.toml's lower bounds allow no version the project cannot run with."""

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def floor(distribution: str) -> tuple[int, ...]:
    """The ``>=`` bound of ``distribution`` among the dependencies and extras."""
    project = PYPROJECT["project"]
    requirements = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    for requirement in requirements:
        match = re.fullmatch(rf"{re.escape(distribution)}\s*>=\s*([\d.]+)\s*", requirement)
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    raise AssertionError(f"no {distribution}>=... in pyproject.toml")


def test_pytest_asyncio_floor_knows_the_test_loop_scope_option() -> None:
    # asyncio_default_test_loop_scope exists since pytest-asyncio 0.26.
    assert "asyncio_default_test_loop_scope" in PYPROJECT["tool"]["pytest"]["ini_options"]
    assert floor("pytest-asyncio") >= (0, 26)


def test_python_json_logger_floor_has_the_json_module() -> None:
    # pythonjsonlogger.json (the module the code imports) exists since 3.1.
    sources = [*(REPO / "services").rglob("*.py")]
    assert any("pythonjsonlogger.json" in p.read_text(encoding="utf-8") for p in sources)
    assert floor("python-json-logger") >= (3, 1)
