"""The README's configuration table, generated from the pydantic-settings classes.

Every environment variable a service reads is a field of one of the classes
in :data:`SETTINGS_CLASSES`; the table lists each with the services that
read it, the field's ``description`` and its default (``required`` for
fields without one and for secrets, whose default is never shown).

``python -m services.infra.settings_doc --write README.md`` (``make
settings-doc``) replaces the text between :data:`START` and :data:`END` in
README.md; ``--check README.md`` (``make lint``) exits 1 when it is stale.
Without an option it prints the table.
"""

import argparse
import importlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import AliasChoices, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
GENERATED_NOTE = (
    "<!-- Generated from the settings classes by `make settings-doc`"
    " (services/infra/settings_doc.py): edit the fields' descriptions, not this table. -->"
)

REQUIRED = "required"


@dataclass(frozen=True)
class SettingsClass:
    """A pydantic-settings class, as ``"module:Class"``, and the services that read it."""

    target: str
    readers: tuple[str, ...]

    def load(self) -> type[BaseSettings]:
        """Import the class."""
        module_name, _, class_name = self.target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
            raise TypeError(f"{self.target} is not a pydantic-settings class")
        return cls


SETTINGS_CLASSES: tuple[SettingsClass, ...] = (
    SettingsClass(
        "services.infra.settings:CommonSettings", ("policy-service", "import-worker", "handlers")
    ),
    SettingsClass("services.infra.settings:SecretsSettings", ("policy-service", "handlers")),
    SettingsClass("services.policy_service.settings:PolicyServiceSettings", ("policy-service",)),
    SettingsClass("services.import_worker.settings:WorkerSettings", ("import-worker",)),
    SettingsClass("services.handlers.settings:HandlersSettings", ("handlers",)),
    SettingsClass("schemas.topics:TopicNames", ("policy-service", "import-worker", "handlers")),
)
"""Every settings class of the project, in table order: add new ones here
(a unit test fails when a ``BaseSettings`` subclass under ``services/`` or
``schemas/`` is missing)."""


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    variable: str
    readers: tuple[str, ...]
    meaning: str
    default: str

    def markdown(self) -> str:
        cells = [f"`{self.variable}`", ", ".join(self.readers), self.meaning, self.default]
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def env_name(cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable that sets ``field`` (the prefix, or an alias, applies)."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, AliasChoices):
        alias = next((choice for choice in alias.choices if isinstance(choice, str)), None)
    if isinstance(alias, str):
        variable = alias
    else:
        variable = f"{cls.model_config.get('env_prefix') or ''}{name}"
    return variable if cls.model_config.get("case_sensitive") else variable.upper()


def render_default(field: FieldInfo) -> str:
    """The default as one would write it in the environment; ``required`` when there is
    none or it is a secret."""
    if field.is_required() or _is_secret(field.annotation):
        return REQUIRED
    value = field.get_default(call_default_factory=True)
    if _is_secret(type(value)):
        return REQUIRED
    if value is None:
        return "unset"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value or '""'
    elif isinstance(value, int | float):
        text = str(value)
    else:  # lists, tuples, dicts: pydantic-settings reads them as JSON
        text = json.dumps(value, separators=(",", ":"))
    return f"`{text}`"


def _is_secret(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes)


def rows(classes: Iterable[SettingsClass] = SETTINGS_CLASSES) -> list[Row]:
    """One row per variable, or per variable and meaning/default when services differ
    (e.g. each service's own pool sizes); first-seen order."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    missing: list[str] = []
    for source in classes:
        cls = source.load()
        for name, field in cls.model_fields.items():
            description = (field.description or "").strip()
            if not description:
                missing.append(f"{source.target}.{name}")
            key = (env_name(cls, name, field), " ".join(description.split()), render_default(field))
            readers = merged.setdefault(key, [])
            readers.extend(r for r in source.readers if r not in readers)
    if missing:
        raise ValueError(f"settings without a description: {', '.join(missing)}")
    return [
        Row(variable, tuple(readers), meaning, default)
        for (variable, meaning, default), readers in merged.items()
    ]


def render_table(classes: Iterable[SettingsClass] = SETTINGS_CLASSES) -> str:
    """The Markdown table (no trailing newline)."""
    lines = ["| variable | read by | meaning | default |", "|---|---|---|---|"]
    lines += [row.markdown() for row in rows(classes)]
    return "\n".join(lines)


def replace_table(text: str, table: str) -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"expected exactly one {START} and one {END}")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if END in head:
        raise ValueError(f"{END} comes before {START}")
    return f"{head}{START}\n{GENERATED_NOTE}\n\n{table}\n\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.infra.settings_doc",
        description="Render the configuration table from the pydantic-settings classes.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", metavar="FILE", type=Path, help="Replace the table in FILE.")
    mode.add_argument(
        "--check", metavar="FILE", type=Path, help="Exit 1 when FILE's table is stale."
    )
    args = parser.parse_args(argv)
    table = render_table()
    target: Path | None = args.write or args.check
    if target is None:
        print(table)
        return 0
    text = target.read_text(encoding="utf-8")
    try:
        updated = replace_table(text, table)
    except ValueError as exc:
        print(f"{target}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != text:
            print(
                f"{target}: the configuration table is stale; run `make settings-doc`",
                file=sys.stderr,
            )
            return 1
        return 0
    if updated != text:
        target.write_text(updated, encoding="utf-8")
        print(f"{target}: configuration table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
