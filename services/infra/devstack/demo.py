"""``make run``'s admin UI link and demo data, added to the stack's summary.

The stack prints its summary once the services answer ``/healthz``. Just
before that summary reaches the terminal, the demo partner is seeded through
the policy service's API and the dev sign-in link is added above the
summary's last line, which scripts and tests wait for.
"""

from collections.abc import Callable

from services.infra.devstack.net import LOOPBACK
from services.infra.devstack.summary import READY_LINE
from services.policy_service.devseed import SeedError, SeedResult, seed_demo
from services.policy_service.ui.devsignin import DEMO_PARTNER, DEV_SIGN_IN_PATH

Echo = Callable[[str], None]
Seeder = Callable[[str], SeedResult]


def ui_lines(base_url: str, seeder: Seeder = seed_demo) -> list[str]:
    """The summary lines about the UI; seeds the demo partner on the way."""
    try:
        seeded = seeder(base_url).describe()
    except SeedError as exc:
        seeded = f"not seeded: {exc}"
    return [
        f"  # admin UI, signed in as a manager of {DEMO_PARTNER} (DEV_MODE only):",
        f"  {base_url}{DEV_SIGN_IN_PATH}",
        f"  # demo data: {seeded}",
    ]


def with_ui_link(echo: Echo, http_port: int, seeder: Seeder = seed_demo) -> Echo:
    """``echo``, except that the summary also carries the UI sign-in link and demo data."""
    base_url = f"http://{LOOPBACK}:{http_port}"

    def announce(message: str) -> None:
        if message.endswith(READY_LINE):
            head = message.removesuffix(READY_LINE).rstrip("\n")
            message = "\n".join([head, "", *ui_lines(base_url, seeder), "", READY_LINE])
        echo(message)

    return announce
