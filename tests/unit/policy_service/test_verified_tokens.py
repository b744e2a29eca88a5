"""The cache of verified tokens never outlives a token's ``exp``, nor its own ttl."""

import time

import pytest

from services.policy_service.api.auth import (
    Unauthenticated,
    VerifiedTokens,
    authenticate,
    issue_token,
)

SECRET = "verified-tokens-tests-" + "z" * 40


def test_a_cached_token_is_answered_from_the_cache_until_its_exp() -> None:
    cache = VerifiedTokens(ttl=30)
    token = issue_token(SECRET, sub="u", partner_id="p-1", role="manager", ttl_seconds=1)
    first = authenticate(f"Bearer {token}", SECRET, cache)
    assert authenticate(f"Bearer {token}", SECRET, cache) is first  # cached
    time.sleep(2.05)  # past exp (whole seconds), well within the ttl
    assert cache.get(SECRET, token) is None
    with pytest.raises(Unauthenticated, match="expired"):
        authenticate(f"Bearer {token}", SECRET, cache)


def test_the_ttl_bounds_an_entry_and_the_size_bounds_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = VerifiedTokens(size=2, ttl=1)
    tokens = [
        issue_token(SECRET, sub=f"u{i}", partner_id="p-1", role="manager", ttl_seconds=600)
        for i in range(3)
    ]
    for t in tokens:
        authenticate(f"Bearer {t}", SECRET, cache)
    assert cache.get(SECRET, tokens[0]) is None  # the oldest went first
    assert cache.get(SECRET, tokens[2]) is not None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 2)
    assert cache.get(SECRET, tokens[2]) is None


def test_a_token_is_cached_per_secret() -> None:
    cache = VerifiedTokens()
    token = issue_token(SECRET, sub="u", partner_id="p-1", role="manager", ttl_seconds=60)
    authenticate(f"Bearer {token}", SECRET, cache)
    with pytest.raises(Unauthenticated):
        authenticate(f"Bearer {token}", "another-secret-" + "q" * 40, cache)
