"""Changing a policy's options: a JSON merge patch over the current ones."""

from typing import Any

from schemas.enums import AccountType
from schemas.options import AdministratorOptions, EndUserOptions, options_model_for


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 merge patch: objects merge key by key, null removes, anything else replaces."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


def patch_options(
    account_type: AccountType,
    current: EndUserOptions | AdministratorOptions,
    patch: dict[str, Any],
) -> EndUserOptions | AdministratorOptions:
    """The options after ``patch``; raises pydantic's ValidationError if invalid.

    Strict, as the JSON it comes from: only JSON booleans are booleans.
    """
    merged = merge_patch(current.model_dump(mode="json"), patch)
    return options_model_for(account_type).model_validate(merged, strict=True, extra="forbid")
