"""A batch's decisions leave in the order their discoveries were read (found by
``make chaos``, scenario 2: per-customer order of decisions).

The engine used to send every ``imported`` decision of a batch before every
``no_policy`` one, so a customer's earlier ``no_policy`` decision could land after a
later ``imported`` one in the same partition of ``import.decisions``.
"""

import pytest

from .fakes import FakeDirectory, FakePublisher
from .support import ADMIN, ALL_END_USER, END_USER, body, customer, discovered, make_engine, record
from .support import policy as make_policy

pytestmark = pytest.mark.unit


async def test_decisions_follow_the_order_of_their_discoveries() -> None:
    # End users are imported, administrators have no policy: both outcomes in one batch.
    directory = FakeDirectory(customer("c1", end_user=make_policy(END_USER, **ALL_END_USER)))
    publisher = FakePublisher()
    engine = make_engine(directory, publisher=publisher)
    events = [
        discovered("c1", account_type=ADMIN, external_id="a-1"),
        discovered("c1", account_type=END_USER, external_id="u-1"),
        discovered("c1", account_type=ADMIN, external_id="a-2"),
        discovered("c1", account_type=END_USER, external_id="u-2"),
        discovered("c1", account_type=ADMIN, external_id="a-1"),  # decided afresh
    ]
    await engine.process([record(e, offset=i) for i, e in enumerate(events)])

    decisions = [body(m) for m in publisher.sent if m.topic == "import.decisions"]
    assert [d["causationid"] for d in decisions] == [e["id"] for e in events]
    assert [d["data"]["outcome"] for d in decisions] == [
        "no_policy",
        "imported",
        "no_policy",
        "imported",
        "no_policy",
    ]
