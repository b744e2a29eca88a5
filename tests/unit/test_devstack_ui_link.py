"""``make run`` prints the UI sign-in link and seeds the demo partner before its last line."""

from services.infra.devstack.demo import with_ui_link
from services.infra.devstack.summary import READY_LINE
from services.infra.devstack.tokens import DEV_PARTNER
from services.policy_service.devseed import SeedError, SeedResult
from services.policy_service.ui.devsignin import DEMO_PARTNER


def test_the_summary_gets_the_link_and_the_seed_result_before_its_last_line() -> None:
    printed: list[str] = []
    asked: list[str] = []

    def seeder(base_url: str) -> SeedResult:
        asked.append(base_url)
        return SeedResult(seeded=True, customers=6, policies=3)

    echo = with_ui_link(printed.append, 8123, seeder)
    echo("stopping services ...")
    echo(f"msp-import dev stack up\n\n  curl ...\n\n{READY_LINE}")

    assert printed[0] == "stopping services ..."
    lines = printed[1].splitlines()
    assert lines[-1] == READY_LINE
    assert "  http://127.0.0.1:8123/dev/sign-in" in lines
    assert f"  # demo data: {DEMO_PARTNER} seeded with 6 customers and 3 policies" in lines
    assert asked == ["http://127.0.0.1:8123"]


def test_a_failed_seed_is_reported_not_fatal() -> None:
    printed: list[str] = []

    def seeder(base_url: str) -> SeedResult:
        raise SeedError("the policy service does not answer")

    with_ui_link(printed.append, 8080, seeder)(READY_LINE)
    assert "  # demo data: not seeded: the policy service does not answer" in printed[0]
    assert printed[0].endswith(READY_LINE)


def test_the_ui_signs_into_the_partner_the_dev_tokens_use() -> None:
    assert DEMO_PARTNER == DEV_PARTNER
