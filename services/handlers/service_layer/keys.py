"""Moving the handlers' own secrets to a new ``SECRETS_KEY`` (``handlers rewrap-keys``).

Envelope encryption makes this cheap: a vault secret is sealed with a data key of
its own, and only the data key is sealed under ``SECRETS_KEY``, so rotating the key
re-seals 32-byte data keys, never a password. The last known password of each
account (kept sealed as it came from the bus) is re-sealed too. Each row is
swapped only if it did not change meanwhile, and a row already under the new key
is left alone, so the command can be run again after an interruption.
"""

from dataclasses import dataclass

from services.handlers.adapters.enrolments import EnrolmentStore
from services.handlers.service_layer.enrolment import vault_aad
from services.infra.secrets import SecretBox, SecretError


@dataclass
class Rewrapped:
    rewrapped: int = 0
    already: int = 0  # under the new key already (a second run)
    unopenable: int = 0  # under neither key: left as they are, and counted


async def rewrap_keys(store: EnrolmentStore, old: SecretBox, new: SecretBox) -> Rewrapped:
    out = Rewrapped()
    for table in ("vault", "passwords"):
        after = ""
        while True:
            batch = await store.sealed_rows(table, after)
            if not batch:
                break
            for account_key, sealed in batch:
                aad = vault_aad(account_key) if table == "vault" else account_key
                try:
                    new.open(sealed, aad)
                    out.already += 1
                    continue
                except SecretError:
                    pass
                try:
                    plain = old.open(sealed, aad)
                except SecretError:
                    out.unopenable += 1
                    continue
                if await store.reseal(table, account_key, sealed, new.seal(plain, aad)):
                    out.rewrapped += 1
            after = batch[-1][0]
    return out
