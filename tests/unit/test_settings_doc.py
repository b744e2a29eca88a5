"""README.md's configuration table is generated from the settings classes and current."""

import ast
from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.infra import settings_doc
from services.infra.settings_doc import (
    END,
    REQUIRED,
    SETTINGS_CLASSES,
    START,
    SettingsClass,
    render_table,
    replace_table,
    rows,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_readme_configuration_table_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_table(text, render_table()) == text, "run `make settings-doc`"


def test_the_table_is_in_the_configuration_section() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    assert START in section
    assert END in section
    assert "make settings-doc" in section


def settings_classes_in_source() -> set[str]:
    """``module:Class`` of every class under services/ and schemas/ that derives,
    directly or not, from ``BaseSettings`` (bases matched by name)."""
    classes: dict[str, tuple[str, list[str]]] = {}
    for top in ("services", "schemas"):
        for path in sorted((REPO / top).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [
                        b.id if isinstance(b, ast.Name) else b.attr
                        for b in node.bases
                        if isinstance(b, ast.Name | ast.Attribute)
                    ]
                    classes[f"{module}:{node.name}"] = (node.name, bases)
    names = {"BaseSettings"}
    while True:
        found = {name for name, bases in classes.values() if names & set(bases)} | names
        if found == names:
            break
        names = found
    return {target for target, (name, _) in classes.items() if name in names}


def test_every_settings_class_of_the_project_is_in_the_table() -> None:
    found = settings_classes_in_source()
    assert "services.infra.settings:CommonSettings" in found  # the scan works
    assert found == {source.target for source in SETTINGS_CLASSES}


def test_every_variable_has_a_meaning_and_a_default() -> None:
    table = rows()
    for row in table:
        assert row.meaning, row
        assert row.default, row
        assert row.readers, row
    variables = {row.variable for row in table}
    # The ones the old hand-written table had, and the ones it missed.
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "AUTH_JWT_SECRET", "HTTP_HOST"} <= variables
    assert {"WORKER_HTTP_HOST", "TOPIC_COMMANDS_PSA", "OUTBOX_RETENTION_HOURS"} <= variables
    assert len(variables) >= 35


def test_secrets_and_fields_without_default_say_required() -> None:
    by_variable = {row.variable: row for row in rows()}
    assert by_variable["AUTH_JWT_SECRET"].default == REQUIRED
    assert by_variable["AUTH_JWT_SECRET"].readers == ("policy-service",)
    assert by_variable["HTTP_HOST"].default == "`127.0.0.1`"
    assert by_variable["RETRY_DELAYS_SECONDS"].default == "`[1.0,2.0,5.0,10.0,30.0]`"
    assert by_variable["DEV_MODE"].default == "`false`"


def test_shared_variables_list_every_reader_once() -> None:
    table = rows()
    (partitions,) = [row for row in table if row.variable == "TOPIC_PARTITIONS"]
    assert partitions.readers == ("policy-service", "import-worker", "handlers")
    pools = {row.readers: row.default for row in table if row.variable == "DB_POOL_MAX_SIZE"}
    assert pools == {("policy-service",): "`32`", ("import-worker",): "`8`", ("handlers",): "`16`"}


class ExampleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    token: SecretStr = Field(default=SecretStr("not-shown"), description="A secret | with a pipe.")
    name: str = Field(description="Required, no default.")
    empty: str = Field(default="", description="Empty by default.")


class Undocumented(BaseSettings):
    documented: int = Field(default=1, description="Fine.")
    bare: int = 2


def test_rendering_of_secrets_required_fields_and_pipes() -> None:
    source = SettingsClass(f"{__name__}:ExampleSettings", ("example",))
    assert render_table([source]).splitlines()[2:] == [
        "| `EXAMPLE_TOKEN` | example | A secret \\| with a pipe. | required |",
        "| `EXAMPLE_NAME` | example | Required, no default. | required |",
        '| `EXAMPLE_EMPTY` | example | Empty by default. | `""` |',
    ]
    assert "not-shown" not in render_table([source])


def test_a_field_without_description_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"Undocumented\.bare"):
        rows([SettingsClass(f"{__name__}:Undocumented", ("example",))])


def test_replace_table_needs_both_markers_in_order() -> None:
    for broken in ("no markers", f"{START}\n", f"{END}\n{START}\n", f"{START}{END}{START}{END}"):
        with pytest.raises(ValueError, match="settings-table"):
            replace_table(broken, "| t |")
    once = replace_table(f"a\n{START}\nold\n{END}\nb\n", "| t |")
    assert once.startswith(f"a\n{START}\n")
    assert once.endswith(f"\n| t |\n\n{END}\nb\n")
    assert replace_table(once, "| t |") == once


def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{START}\n| stale |\n{END}\n\nafter\n", encoding="utf-8")

    assert settings_doc.main(["--check", str(readme)]) == 1
    assert settings_doc.main(["--write", str(readme)]) == 0
    assert settings_doc.main(["--check", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "| stale |" not in text
    assert "`AUTH_JWT_SECRET`" in text
    assert text.endswith(f"{END}\n\nafter\n")
