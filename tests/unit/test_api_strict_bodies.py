"""Request bodies of the policy service say what they take (found by ``make chaos``,
scenario 8: schemathesis with every check).

* Booleans are JSON booleans: ``"yes"``, ``1`` or ``"off"`` were read as booleans, so
  a schema-violating request changed a policy (``negative_data_rejection``).
* The OpenAPI document matches the models: ``options`` may be omitted on create,
  customer id lists are unique, an options merge patch names known options only, and
  a name must keep a character once trimmed and no string holds U+0000
  (``positive_data_acceptance``).
"""

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from schemas.enums import AccountType
from schemas.options import EndUserOptions
from services.policy_service.api.models import PolicyCreate, PolicyPatch
from services.policy_service.api.openapi import build_openapi
from services.policy_service.domain.options import patch_options

pytestmark = pytest.mark.unit

NOT_BOOLEANS = ["yes", "false", 0, 1, "off", None]


@pytest.mark.parametrize("value", NOT_BOOLEANS)
def test_an_option_must_be_a_json_boolean(value: Any) -> None:
    body = {"account_type": "end_user", "name": "n", "options": {"send_welcome_email": value}}
    with pytest.raises(ValidationError):
        PolicyCreate.model_validate(body)
    with pytest.raises(ValidationError):
        patch_options(AccountType.END_USER, EndUserOptions(), {"psa": {"match": value or 0}})


@pytest.mark.parametrize("value", [v for v in NOT_BOOLEANS if v is not None])
def test_is_default_must_be_a_json_boolean(value: Any) -> None:
    with pytest.raises(ValidationError):
        PolicyCreate.model_validate({"account_type": "end_user", "name": "n", "is_default": value})
    with pytest.raises(ValidationError):
        PolicyPatch.model_validate({"is_default": value})


def test_real_booleans_still_work() -> None:
    body = {"account_type": "end_user", "name": "n", "is_default": True}
    created = PolicyCreate.model_validate({**body, "options": {"psa": {"match": True}}})
    assert created.options.psa.match is True  # type: ignore[union-attr]
    assert PolicyCreate.model_validate(body).options == EndUserOptions()
    patched = patch_options(AccountType.END_USER, EndUserOptions(), {"psa": {"match": True}})
    assert patched.psa.match is True  # type: ignore[union-attr]


def test_the_openapi_document_matches_the_bodies() -> None:
    schemas = build_openapi("test")["components"]["schemas"]
    assert "options" not in schemas["PolicyCreate"]["required"]
    assert schemas["CustomerIds"]["properties"]["customer_ids"]["uniqueItems"] is True
    options = schemas["PolicyPatch"]["properties"]["options"]
    assert options["additionalProperties"] is False
    assert set(options["properties"]) == {
        "documentation",
        "psa",
        "send_welcome_email",
        "enable_self_serve_reset",
        "sync_password_to_m365",
        "save_password_in_vault",
        "enable_password_rotation",
    }
    name = Draft202012Validator(schemas["CustomerCreate"]["properties"]["name"])
    assert name.is_valid(" Contoso ")
    assert not name.is_valid("Con\x00toso")
    assert not name.is_valid("\u00a0")  # stripped to nothing
