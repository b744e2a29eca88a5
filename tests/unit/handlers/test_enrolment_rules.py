"""Pure rules of the handlers' part 2: the rotation request id, the vault's envelope
encryption, the welcome email's back-off, which integration a command uses."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.commands import COMMAND_MODELS
from schemas.ids import ID_NAMESPACE
from services.handlers.domain.rotation import rotation_request_id
from services.handlers.service_layer.enrolment import Sealed, open_secret, seal_secret
from services.handlers.service_layer.executor import provider_of
from services.handlers.service_layer.welcome import WelcomeTiming
from services.import_worker.simulate_passwords import new_password
from services.infra.secrets import SecretBox, SecretError, new_key

KEY = "p-1:7a0c3f5e-51f4-4b8e-9d59-0a1b2c3d4e5f:active_directory:S-1-5-21-1"


def test_the_rotation_request_id_is_uuid5_over_the_key_and_the_utc_due_date() -> None:
    due = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    expected = uuid.uuid5(ID_NAMESPACE, f"{KEY}|rotation.requested|2026-12-01")
    assert rotation_request_id(KEY, due) == expected
    # the same instant written in another zone is the same day in UTC
    same = due.astimezone(timezone(timedelta(hours=5)))
    assert same.date().isoformat() == "2026-12-02"
    assert rotation_request_id(KEY, same) == expected
    assert rotation_request_id(KEY, due + timedelta(days=1)) != expected
    assert rotation_request_id(KEY + "x", due) != expected


def test_a_vault_secret_is_sealed_with_its_own_data_key_under_secrets_key() -> None:
    box = SecretBox.from_setting(new_key())
    one, two = seal_secret(box, KEY, "Pa55-word!"), seal_secret(box, KEY, "Pa55-word!")
    assert one.wrapped_key != two.wrapped_key  # a fresh data key every time
    assert open_secret(box, KEY, one) == "Pa55-word!"
    assert "Pa55-word!" not in one.secret_ciphertext + one.wrapped_key
    with pytest.raises(SecretError):
        open_secret(SecretBox.from_setting(new_key()), KEY, one)  # another SECRETS_KEY
    with pytest.raises(SecretError):
        open_secret(box, KEY + "x", one)  # another account's entry
    with pytest.raises(SecretError):
        open_secret(box, KEY, Sealed(two.wrapped_key, one.secret_ciphertext))


def test_the_welcome_back_off_doubles_up_to_its_cap() -> None:
    timing = WelcomeTiming(backoff_cap=timedelta(seconds=60))
    assert [timing.backoff(t).total_seconds() for t in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert timing.backoff(10_000) == timedelta(seconds=60)


def test_each_command_type_names_the_integration_it_is_executed_against() -> None:
    expected = {
        "psa.contact.link": "connectwise",
        "documentation.password.link": "itglue",
        "vault.password.store": None,
        "rotation.enroll": None,
        "notification.welcome_email.send": "smtp",
        "identity.self_service_reset.enable": None,
        "identity.m365_password_sync.enable": "m365",
    }
    account = {
        "customer_id": uuid.uuid4(),
        "account_type": "end_user",
        "directory": "active_directory",
        "external_id": "S-1",
        "username": "kim",
        "key": KEY,
    }
    extra = {
        "psa.contact.link": {
            "provider": "connectwise",
            "company_id": "1",
            "create_if_missing": True,
        },
        "documentation.password.link": {
            "provider": "itglue",
            "organization_id": "1",
            "create_if_missing": True,
        },
        "notification.welcome_email.send": {"email": None},
    }
    for model in COMMAND_MODELS:
        cmd = model.model_validate(
            {"account": account, "policy_id": uuid.uuid4(), "policy_version": 1}
            | extra.get(model.TYPE, {})
        )
        assert provider_of(cmd) == expected[model.TYPE], model.TYPE


def test_simulated_passwords_meet_the_complexity_rules() -> None:
    for _ in range(200):
        password = new_password()
        assert len(password) == 20
        assert any(c.islower() for c in password)
        assert any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(c in "-_!.#" for c in password)
