"""README.md says what ``make test``/``make run`` do to the machine, and it matches the code:
the packages the install scripts apt-get, PostgreSQL's OS user, Chromium's path."""

import re
from pathlib import Path

import pytest

from services.infra.devstack.postgres import SYSTEM_USER
from tests.e2e.ui.support import CHROMIUM

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def root_notes() -> str:
    """The README's subsection about root, under "The two commands"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## The two commands\n", 1)[1].split("\n## ", 1)[0]
    assert "\n### What they change outside the repository" in section
    return " ".join(section.split("\n### What they change outside the repository", 1)[1].split())


def apt_packages(script: str) -> list[str]:
    """The package names ``scripts/<script>`` apt-get installs: the literal ones of its
    ``apt-get install -y ...`` command, and those it adds to ``missing_apt``."""
    source = (REPO / "scripts" / script).read_text(encoding="utf-8")
    packages: list[str] = []
    for line in source.splitlines():
        command = line.split(">", 1)[0].split()
        if "install" in command and "-y" in command:
            after = command[command.index("install") + 1 :]
            packages += [w for w in after if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w)]
        packages += re.findall(r"missing_apt\+=\(([a-z0-9.+-]+)\)", line)
    return packages


def test_it_names_what_install_browser_apt_gets() -> None:
    packages = apt_packages("install-browser.sh")
    assert "chromium" in packages
    notes = root_notes()
    for package in packages:
        assert package in notes, package
    assert "scripts/install-browser.sh" in notes


def test_it_names_what_install_deploy_tools_apt_gets() -> None:
    packages = apt_packages("install-deploy-tools.sh")
    assert packages == ["shellcheck"]
    assert "shellcheck" in root_notes()


def test_it_names_the_os_user_postgresql_runs_as() -> None:
    notes = root_notes()
    assert f"`{SYSTEM_USER}`" in notes
    assert "useradd" in notes


def test_it_names_the_one_chromium_path_the_tests_use() -> None:
    assert f"`{CHROMIUM}`" in root_notes()
    assert str(CHROMIUM) in (REPO / "scripts" / "install-browser.sh").read_text()
