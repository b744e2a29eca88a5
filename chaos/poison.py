"""Fuzzed bus messages for scenario 7, drawn with Hypothesis.

Each message says what the worker must do with it: dead-letter it with one of the
``reasons``, or decide it (``reasons`` empty). Bad messages: random bytes, tombstones,
truncated JSON, JSON that is no object, envelopes with wrong or missing attributes,
valid envelopes with wrong data, huge strings, broken Unicode. Valid ones carry
arbitrary Unicode, maximal lengths or huge extension attributes, and each is a new
account, so each must get a decision of its own.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

INVALID_JSON, INVALID_ENVELOPE, INVALID_DATA = "invalid_json", "invalid_envelope", "invalid_data"


@dataclass(frozen=True)
class Poison:
    kind: str
    value: bytes | None  # None: a tombstone (sent with a key: Kafka needs one of the two)
    reasons: frozenset[str]  # empty: valid, must be decided


def envelope(partner: str, customer: uuid.UUID, n: int, **data: Any) -> dict[str, Any]:
    """A valid ``account.discovered`` envelope of a new account (``n`` makes it unique)."""
    return {
        "specversion": "1.0",
        "id": f"fuzz-{n}-{uuid.uuid4()}",
        "source": "/agents/fuzzer",
        "type": "account.discovered",
        "time": "2024-05-01T12:00:00Z",
        "subject": str(customer),
        "datacontenttype": "application/json",
        "partnerid": partner,
        "data": {
            "customer_id": str(customer),
            "account_type": "end_user",
            "directory": "active_directory",
            "external_id": f"ext-{n}",
            "username": f"user{n}",
            **data,
        },
    }


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
not_a_string = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)
# ``time`` and ``subject`` are optional on inbound envelopes (a null is an absent one)
not_a_string_nor_null = st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)
ENVELOPE_BAD: dict[str, st.SearchStrategy[Any]] = {
    "specversion": st.sampled_from(["0.3", "1", "", "2.0"]) | not_a_string,
    "id": st.just("") | st.text(min_size=129, max_size=200) | not_a_string,
    "source": st.just("") | not_a_string,
    "type": st.sampled_from(["account.removed", "", "Account.Discovered"]) | not_a_string,
    "time": st.sampled_from(["yesterday", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z"])
    | not_a_string_nor_null,
    "subject": st.just("") | not_a_string_nor_null,
    "partnerid": st.sampled_from(["a:b", "", "x" * 65, "spaces not allowed"]) | not_a_string,
    "datacontenttype": st.sampled_from(["text/plain", "application/xml"]),
    "data": st.none() | st.integers() | st.text() | st.lists(st.integers(), max_size=3),
}
DATA_BAD: dict[str, st.SearchStrategy[Any]] = {
    "customer_id": st.sampled_from(["not-a-uuid", "", "1234"]) | st.integers() | st.none(),
    "account_type": st.sampled_from(["guest", "", "END_USER"]) | st.integers(),
    "directory": st.sampled_from(["ldap", "", "okta"]) | st.integers(),
    "external_id": st.just("")
    | st.text(min_size=257, max_size=300)
    | st.text(max_size=20).map(lambda t: f"{t}\x00{t}")  # NUL: PostgreSQL text cannot hold it
    | not_a_string,
    "username": st.just("") | st.text(min_size=257, max_size=300) | not_a_string,
    "email": st.sampled_from(["no-at-sign", "a@b", "two@@example.com", "sp ace@x.io"]),
    "phone": st.just("") | st.text(min_size=65, max_size=80),
    "discovered_at": st.sampled_from(["2024-05-01T12:00:00", "soon"]) | st.integers(),
}
REQUIRED_ENVELOPE = ("specversion", "id", "source", "type", "partnerid", "data")
# Valid all the same (the tolerant reader of docs/contract.md §2): decided, never dead-lettered.
OPTIONAL_ENVELOPE = ("time", "subject", "datacontenttype")
REQUIRED_DATA = ("customer_id", "account_type", "directory", "external_id", "username")
unicode_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)


def strategy(partner: str, customer: uuid.UUID) -> st.SearchStrategy[Poison]:
    """One fuzzed message about ``customer`` of ``partner`` (a known, assigned customer)."""
    counter = iter(range(10**9))

    def valid(**data: Any) -> dict[str, Any]:
        return envelope(partner, customer, next(counter), **data)

    def mutate_attr(attr_value: tuple[str, Any]) -> Poison:
        body = valid()
        name, value = attr_value
        body[name] = value
        return Poison(f"envelope.{name}", _dump(body), frozenset({INVALID_ENVELOPE}))

    def mutate_data(attr_value: tuple[str, Any]) -> Poison:
        body = valid()
        name, value = attr_value
        body["data"][name] = value
        return Poison(f"data.{name}", _dump(body), frozenset({INVALID_DATA}))

    def drop(where: str, name: str) -> Poison:
        body = valid()
        target = body if where == "envelope" else body["data"]
        del target[name]
        reason = INVALID_ENVELOPE if where == "envelope" else INVALID_DATA
        return Poison(f"{where}.missing", _dump(body), frozenset({reason}))

    def tolerated(kind: str, name: str, value: Any = None) -> Poison:
        body = valid()
        if kind == "envelope.optional_absent":
            del body[name]
        elif kind == "envelope.optional_null":
            body[name] = None
        else:  # an unknown field in data: ignored
            body["data"][name] = value
        return Poison(kind, _dump(body), frozenset())

    def truncated(cut: float) -> Poison:
        raw = _dump(valid())
        return Poison("truncated", raw[: max(1, int(len(raw) * cut))], frozenset({INVALID_JSON}))

    def unicode_valid(texts: tuple[str, str, str]) -> Poison:
        name, display, external = texts
        n = next(counter)
        body = envelope(partner, customer, n, username=name, display_name=display)
        body["data"]["external_id"] = f"{external[:200].replace(chr(0), '')}-{n}"
        return Poison("unicode.valid", _dump(body), frozenset())

    def huge(size: int, where: str) -> Poison:
        body = valid()
        if where == "extension":  # an unknown extension attribute: kept, harmless, valid
            body["xhuge"] = "x" * size
            return Poison("huge.extension", _dump(body), frozenset())
        body["data"]["username"] = "\u00e9" * size
        return Poison("huge.username", _dump(body), frozenset({INVALID_DATA}))

    def lone_surrogate(field: str) -> Poison:
        raw = _dump(valid(**{field: "PLACEHOLDER"})).replace(b"PLACEHOLDER", b"\\ud800x")
        return Poison("unicode.lone_surrogate", raw, frozenset({INVALID_JSON}))

    def bad_utf8(junk: bytes) -> Poison:
        raw = _dump(valid(username="PLACEHOLDER")).replace(b"PLACEHOLDER", b"\xff" + junk)
        return Poison("unicode.bad_utf8", raw, frozenset({INVALID_JSON}))

    options: list[st.SearchStrategy[Poison]] = [
        st.binary(max_size=400).map(
            lambda b: Poison("random_bytes", b, frozenset({INVALID_JSON, INVALID_ENVELOPE}))
        ),
        st.just(None).map(lambda _: Poison("tombstone", None, frozenset({INVALID_JSON}))),
        st.floats(0.05, 0.98).map(truncated),
        json_values.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: Poison("json_not_object", _dump(v), frozenset({INVALID_ENVELOPE}))
        ),
        st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
            lambda v: Poison("json_object", _dump(v), frozenset({INVALID_ENVELOPE}))
        ),
        st.sampled_from(sorted(ENVELOPE_BAD))
        .flatmap(lambda k: st.tuples(st.just(k), ENVELOPE_BAD[k]))
        .map(mutate_attr),
        st.sampled_from(sorted(DATA_BAD))
        .flatmap(lambda k: st.tuples(st.just(k), DATA_BAD[k]))
        .map(mutate_data),
        st.sampled_from(REQUIRED_ENVELOPE).map(lambda k: drop("envelope", k)),
        st.sampled_from(REQUIRED_DATA).map(lambda k: drop("data", k)),
        st.sampled_from(OPTIONAL_ENVELOPE).map(lambda k: tolerated("envelope.optional_absent", k)),
        st.sampled_from(("time", "subject")).map(lambda k: tolerated("envelope.optional_null", k)),
        json_values.map(lambda v: tolerated("data.unknown_field", "x_unknown_field", v)),
        st.tuples(unicode_text, unicode_text, unicode_text).map(unicode_valid),
        st.tuples(st.integers(100_000, 400_000), st.sampled_from(["extension", "username"])).map(
            lambda t: huge(*t)
        ),
        st.sampled_from(["username", "display_name", "external_id"]).map(lone_surrogate),
        st.binary(max_size=4).map(bad_utf8),
    ]
    return st.one_of(options)


def draw(make: Callable[[], st.SearchStrategy[Poison]], count: int, seed: int) -> list[Poison]:
    """``count`` examples of the strategy (fewer if Hypothesis runs out), reproducibly."""
    drawn: list[Poison] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(make())
    def collect(poison: Poison) -> None:
        drawn.append(poison)

    collect()
    return drawn
