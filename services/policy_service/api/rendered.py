"""Policies as JSON, rendered once per state: the hottest read answers cached bytes.

Rendering a policy (``model_dump_json``) was 11.5 % of ``GET effective-policies``
(docs/performance.md), and policies change far less often than they are read.
A policy's state never changes under one ``(id, version, updated_at)``: every
change bumps the version in the transaction that makes it (the unit of work);
the service makes policy ids and never reuses one, and ``updated_at`` would
tell a reused one apart anyway. So the bytes rendered for a state read from PostgreSQL stand
for every later read of that same state; the oldest renderings go first.
"""

import uuid
from datetime import datetime

from schemas.policy import PolicyState
from services.policy_service.api import models as m


def to_policy(state: PolicyState) -> m.Policy:
    """The API's view of a policy, from the state's own fields.

    Built without validating again: ``PolicyState`` validated every value (more
    strictly than the response model's types), and re-validating them was 6 % of
    a policy read (docs/performance.md). A unit test checks it equals the
    validated model.
    """
    return m.Policy.model_construct(**{name: getattr(state, name) for name in _POLICY_FIELDS})


_POLICY_FIELDS = tuple(m.Policy.model_fields)


class RenderedPolicies:
    """``to_policy(state).model_dump_json()``, kept for the last ``size`` states."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._rendered: dict[tuple[uuid.UUID, int, datetime], bytes] = {}

    def __call__(self, state: PolicyState) -> bytes:
        key = (state.id, state.version, state.updated_at)
        found = self._rendered.get(key)
        if found is None:
            found = to_policy(state).model_dump_json().encode()
            if len(self._rendered) >= self.size:
                del self._rendered[next(iter(self._rendered))]
            self._rendered[key] = found
        return found

    def effective(self, end_user: PolicyState | None, admin: PolicyState | None) -> bytes:
        """``m.EffectivePolicies(...).model_dump_json()`` from the cached policies."""
        return b"".join(
            (
                b'{"end_user":',
                self(end_user) if end_user else b"null",
                b',"administrator":',
                self(admin) if admin else b"null",
                b"}",
            )
        )
