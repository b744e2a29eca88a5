"""12. Handlers SIGKILL: the handlers work through thousands of commands (PSA links on
ConnectWise, Autotask and Halo, documentation links on IT Glue and Hudu, three partners)
against the vendors' simulators, and are SIGKILLed three times at random moments and
started again. Then administrators enrolled everywhere (documentation entry, vault,
Microsoft 365 sync, rotation) get thousands of password changes, ten each, and the
handlers are SIGKILLed three more times.

Proves: every command ends with a result (none lost), every copy of a result has the
same id and outcome, and every account that needed a record at a vendor has exactly one
there (a create interrupted by a kill is found again by its mark, never made twice).
Every password change reaches every target once (one ``password_changes`` row per
change and target, none missing; the vault holds one version per change, in order;
IT Glue / Hudu and Microsoft 365 end with the last password; the next rotation is due
an interval after the last change); a change re-applied after a kill (its target's row
not written yet) sets the same password again, and is counted.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from chaos.lab import Lab, http_session, producer, wait_until
from chaos.report import Result
from schemas.commands import (
    Command,
    DocumentationPasswordLink,
    M365PasswordSyncEnable,
    RotationEnroll,
    VaultPasswordStore,
)
from schemas.enums import AccountType
from schemas.envelope import utc_now
from services.infra.migrations import migrate
from tests.integration.handlers.conftest import CREDENTIALS, make_sims
from tests.integration.handlers.harness import (
    Bus,
    Handlers,
    Served,
    account,
    doc_link,
    psa_link,
)
from tests.integration.import_worker.support import Reader
from tests.simulators.serve import MOUNTS


@dataclass(frozen=True)
class Size:
    commands: int
    kills: int
    admins: int  # each gets CHANGES_EACH password changes
    CHANGES_EACH = 10


SIZES = {"full": Size(10_000, 3, 1_000), "ci": Size(1_500, 3, 200)}
TARGET_NAMES = ("documentation", "vault", "m365", "rotation")
TITLE = "12 handlers SIGKILL"
# provider -> company / organisation seeded at the simulator
TARGETS = {"connectwise": 1001, "autotask": 20417, "halo": 88, "itglue": 50101, "hudu": 77}
FAST = {  # the documented limits would make this an hour; the runtime is what is tested
    "connectwise": {"requests_per_minute": 100_000, "marker_custom_field_id": 7},
    "autotask": {"requests_per_hour": 1_000_000, "max_concurrency": 3},
    "halo": {"requests_per_5_minutes": 1_000_000},
    "itglue": {"requests_per_5_minutes": 1_000_000},
    "hudu": {"requests_per_minute": 100_000},
}


def _seed(sims: dict[str, Any]) -> None:
    sims["connectwise"].add_company(1001, "Contoso Ltd")
    sims["autotask"].add_company(20417, "Fabrikam Inc")
    sims["halo"].add_client(88, "Tailspin Toys")
    sims["itglue"].add_organization(50101, "Contoso Ltd")
    sims["hudu"].add_company(77, "Fabrikam Inc")


def _records(sims: dict[str, Any], provider: str) -> list[str]:
    """Every record text at a vendor (what the audit counts accounts in)."""
    sim = sims[provider]
    found = (
        sim.contacts
        if hasattr(sim, "contacts")
        else sim.users
        if provider == "halo"
        else sim.passwords
    )
    return [str(r) for r in found.values()]


async def run(lab: Lab, size: str, seed: int = 12) -> Result:
    s = SIZES[size]
    changes = s.admins * s.CHANGES_EACH
    result = Result(
        TITLE,
        f"{s.commands} commands, then {changes} password changes; {s.kills} random SIGKILLs"
        " in each",
    )
    rng = random.Random(seed)
    dsn = await lab.database("s12")
    await migrate(dsn, "handlers", "services.handlers.adapters.migrations")
    sims: dict[str, Any] = make_sims(**{p: {"rate_limit": None} for p in TARGETS})
    _seed(sims)
    served = await Served(sims, MOUNTS).start()  # type: ignore[arg-type]
    handlers = Handlers(
        lab.bootstrap,
        dsn,
        lab.logs("s12"),
        # a loaded CI machine must not turn a slow simulator into `timeout` results
        extra_env={"MAX_IN_FLIGHT": "500", "VENDOR_GIVE_UP_SECONDS": "600"},
    )
    await handlers.create_topics()
    reader = await Reader(lab.bootstrap, [handlers.topics.command_results]).start()
    try:
        async with http_session() as http, producer(lab.bootstrap) as prod:
            bus = Bus(prod, handlers, reader)
            partners = [f"chaos-{uuid.uuid4().hex[:8]}" for _ in range(3)]
            for partner in partners:
                for provider in TARGETS:
                    await bus.integration(
                        partner,
                        provider,
                        served.url(provider),
                        CREDENTIALS[provider],
                        FAST[provider],
                    )
            markers: dict[str, str] = {}  # command id -> what its vendor record carries
            sent: dict[str, str] = {}  # command id -> provider
            for i in range(s.commands):
                partner = partners[i % len(partners)]
                provider = list(TARGETS)[i % len(TARGETS)]
                target = str(TARGETS[provider])
                if provider in ("itglue", "hudu"):
                    command: Any = doc_link(
                        partner, provider, target, username=f"u{i}-{uuid.uuid4().hex[:6]}"
                    )
                    marker = command.account.key
                else:
                    email = f"c{i}-{uuid.uuid4().hex[:6]}@chaos.example"
                    command = psa_link(partner, provider, target, email=email)
                    marker = email
                cid = await bus.command(partner, command)
                sent[cid], markers[cid] = provider, marker
                if provider in ("itglue", "hudu"):  # a password, so the entry is created
                    await bus.password(
                        partner, command.account.key, command.account.customer_id, f"pw-{i}"
                    )
            handlers.start()
            await handlers.ready(http, timeout=90)

            async def answered() -> int:
                await reader.poll(timeout_ms=50)
                return len({r.envelope["data"]["command_id"] for r in reader.records})

            kills = await _kill_during(handlers, rng, s.kills, s.commands, answered)
            started = time.monotonic()

            async def finished() -> bool:
                await reader.poll(timeout_ms=100)
                final = {
                    r.envelope["data"]["command_id"]
                    for r in reader.records
                    if r.envelope["data"].get("outcome") != "deferred"
                }
                return set(sent) <= final

            await wait_until(finished, "every command answered", timeout=900, every=0.1)
            await reader.drain()
            _audit(result, sent, markers, reader, sims, kills, time.monotonic() - started, s)
            await _changes_phase(lab, result, s, rng, handlers, bus, reader, served, sims, dsn)
    finally:
        handlers.stop()
        await reader.stop()
        await served.stop()
    return result


def _audit(
    result: Result,
    sent: dict[str, str],
    markers: dict[str, str],
    reader: Reader,
    sims: dict[str, Any],
    kills: list[int],
    drain: float,
    s: Size,
) -> None:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in reader.records:
        by_id.setdefault(r.envelope["data"]["command_id"], []).append(r.envelope)
    lost = [cid for cid in sent if cid not in by_id]
    differing = 0
    for copies in by_id.values():
        final = {(c["id"], c["data"].get("outcome") or c["data"].get("reason")) for c in copies}
        labels = {label for _, label in final}
        # a documentation link may say deferred, then created: two results, two ids
        differing += len(final) != len(labels)
    outcomes = Counter(
        label
        for copies in by_id.values()
        for label in {c["data"].get("outcome") or c["data"].get("reason") for c in copies}
    )
    per_provider: dict[str, list[str]] = {p: _records(sims, p) for p in TARGETS}
    duplicates = missing = 0
    for cid, provider in sent.items():
        n = sum(markers[cid] in text for text in per_provider[provider])
        duplicates += n > 1
        missing += n == 0
    result.figures.update(
        {
            "kills (answered at each)": ", ".join(map(str, kills)),
            "drain after last restart": f"{drain:.0f}s",
            "commands": s.commands,
            "results lost": len(lost),
            "outcomes": dict(sorted(outcomes.items())),
            "copies of one result differing": differing,
            "vendor records missing": missing,
            "duplicate vendor records": duplicates,
        }
    )
    result.check("the handlers were killed as often as asked", len(kills) == s.kills)
    result.check("every kill landed mid-stream", all(n < s.commands for n in kills))
    result.check("no result lost", not lost)
    result.check("a result's copies agree", differing == 0)
    result.check("one vendor record per account", duplicates == 0 and missing == 0)
    result.check(
        "no command failed (created or matched; deferred or updated on the way)",
        set(outcomes) <= {"created", "matched", "deferred", "updated"},
    )


async def _kill_during(
    handlers: Handlers,
    rng: random.Random,
    times: int,
    total: int,
    progress: Callable[[], Awaitable[int]],
) -> list[int]:
    """SIGKILL the handlers ``times`` at random points of ``progress`` (out of ``total``),
    starting them again each time; the progress at each kill."""
    kills: list[int] = []
    for fraction in sorted(rng.uniform(0.1, 0.8) for _ in range(times)):
        # each kill after some progress since the last one (never two at one point)
        target_n = max(int(fraction * total), (kills[-1] if kills else 0) + total // 20)

        async def reached(n: int = target_n) -> bool:
            return await progress() >= n

        await wait_until(reached, f"{target_n} of {total} done", timeout=600, every=0.01)
        await asyncio.sleep(rng.uniform(0, 0.3))
        handlers.kill()
        kills.append(await progress())
        await asyncio.sleep(rng.uniform(0, 1))
        handlers.start()
    return kills


async def _changes_phase(
    lab: Lab,
    result: Result,
    s: Size,
    rng: random.Random,
    handlers: Handlers,
    bus: Bus,
    reader: Reader,
    served: Served,
    sims: dict[str, Any],
    dsn: str,
) -> None:
    """Administrators enrolled in every target, ten password changes each, three kills."""
    partner = f"chaos-pw-{uuid.uuid4().hex[:8]}"
    graph = sims["graph"]
    tenant = CREDENTIALS["m365"]["tenant_id"]
    await bus.integration(
        partner,
        "m365",
        served.url("graph") + "/v1.0",
        CREDENTIALS["m365"],
        {"token_url": f"{served.url('graph')}/login/{tenant}/oauth2/v2.0/token"},
    )
    for provider in ("itglue", "hudu"):
        await bus.integration(
            partner, provider, served.url(provider), CREDENTIALS[provider], FAST[provider]
        )
    await asyncio.sleep(2)  # the handlers project the new integrations before the commands
    admins: list[dict[str, Any]] = []
    enrolment_ids: list[str] = []
    for i in range(s.admins):
        upn = f"admin{i}-{uuid.uuid4().hex[:6]}@chaos.example"
        user = graph.add_user(upn)
        provider = ("itglue", "hudu")[i % 2]
        acct = account(
            partner,
            account_type=AccountType.ADMINISTRATOR,
            username=upn.split("@")[0],
            user_principal_name=upn,
        )
        base = {"account": acct, "policy_id": uuid.uuid4(), "policy_version": 1}
        commands: list[Command] = [
            DocumentationPasswordLink.model_validate(
                base
                | {
                    "provider": provider,
                    "organization_id": str(TARGETS[provider]),
                    "create_if_missing": True,
                }
            ),
            VaultPasswordStore.model_validate(base),
            M365PasswordSyncEnable.model_validate(base),
            RotationEnroll.model_validate(base),
        ]
        enrolment_ids.extend([await bus.command(partner, cmd) for cmd in commands])
        admins.append({"account": acct, "provider": provider, "user": user, "passwords": []})

    async def enrolled() -> bool:
        await reader.poll(timeout_ms=100)
        return {r.envelope["data"]["command_id"] for r in reader.records} >= set(enrolment_ids)

    await wait_until(enrolled, "every enrolment answered", timeout=600, every=0.1)

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        changes: list[tuple[str, str]] = []  # (account key, change id) in sending order
        start = utc_now()
        plan = [
            (round_, n, admin) for round_ in range(s.CHANGES_EACH) for n, admin in enumerate(admins)
        ]
        for round_, n, admin in plan:
            admin["passwords"].append(f"Rot-{round_}-{n}-{uuid.uuid4().hex[:8]}!A")
            changes.append((admin["account"]["key"], str(uuid.uuid4())))

        async def send_changes() -> None:
            """The changes, sent while the handlers are being killed."""
            for (round_, n, admin), (key, change) in zip(plan, changes, strict=True):
                await bus.password(
                    partner,
                    key,
                    uuid.UUID(str(admin["account"]["customer_id"])),
                    admin["passwords"][round_],
                    changed_at=start + timedelta(seconds=round_, microseconds=n),
                    changed_by="rotation",
                    change=change,
                )

        sending = asyncio.create_task(send_changes())
        total = len(changes) * len(TARGET_NAMES)
        applied = _Count(pool, {change for _, change in changes})
        kills = await _kill_during(handlers, rng, s.kills, total, applied.refresh)
        await sending

        async def all_applied() -> bool:
            return await applied.refresh() >= total

        began = time.monotonic()
        await wait_until(all_applied, "every change at every target", timeout=900, every=0.2)
        await _audit_changes(result, pool, sims, admins, changes, kills, time.monotonic() - began)
    finally:
        await pool.close()


class _Count:
    """The phase's ``handlers.password_changes`` rows, counted (its progress)."""

    def __init__(self, pool: asyncpg.Pool, changes: set[str]) -> None:
        self.pool = pool
        self.changes = list(changes)

    async def refresh(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM handlers.password_changes WHERE change_id = ANY($1)",
                self.changes,
            )
        )


async def _audit_changes(
    result: Result,
    pool: asyncpg.Pool,
    sims: dict[str, Any],
    admins: list[dict[str, Any]],
    changes: list[tuple[str, str]],
    kills: list[int],
    drain: float,
) -> None:
    rows = await pool.fetch("SELECT change_id, target FROM handlers.password_changes")
    done = Counter((r["change_id"], r["target"]) for r in rows)
    missing = sum(
        1 for _, change in changes for target in TARGET_NAMES if (change, target) not in done
    )
    history = await pool.fetch(
        "SELECT account_key, version, change_id FROM handlers.vault_history ORDER BY version"
    )
    versions: dict[str, list[str]] = {}
    for h in history:
        versions.setdefault(h["account_key"], []).append(h["change_id"])
    sent_order: dict[str, list[str]] = {}
    for key, change in changes:
        sent_order.setdefault(key, []).append(change)
    vault_wrong = sum(versions.get(k) != order for k, order in sent_order.items())
    graph = sims["graph"]
    graph_last_wrong = graph_missing = graph_repeats = 0
    docs_wrong = 0
    due_wrong = 0
    for admin in admins:
        key, passwords = admin["account"]["key"], admin["passwords"]
        sets = [c["password"] for c in graph.password_changes if c["id"] == admin["user"]["id"]]
        graph_last_wrong += not sets or sets[-1] != passwords[-1]
        graph_missing += sum(p not in sets for p in passwords)
        graph_repeats += len(sets) - len(set(sets))
        entries = [
            e
            for e in sims[admin["provider"]].passwords.values()
            if str(e.get("username")) == admin["account"]["username"]
        ]
        docs_wrong += len(entries) != 1 or entries[0].get("password") != passwords[-1]
        last_change = await pool.fetchval(
            "SELECT changed_at FROM handlers.latest_passwords WHERE account_key = $1", key
        )
        due = await pool.fetchval(
            "SELECT next_due FROM handlers.rotations WHERE account_key = $1", key
        )
        due_wrong += last_change is None or due != last_change + timedelta(days=90)
    result.figures.update(
        {
            "password changes": len(changes),
            "kills (target updates done at each)": ", ".join(map(str, kills)),
            "drain after the last restart (changes)": f"{drain:.0f}s",
            "change x target rows missing": missing,
            "vault histories not one version per change in order": vault_wrong,
            "Microsoft 365: changes never set": graph_missing,
            "Microsoft 365: re-set after a kill (same password)": graph_repeats,
            "Microsoft 365 / documentation not at the last password": graph_last_wrong + docs_wrong,
            "rotations not due 90 days after the last change": due_wrong,
        }
    )
    result.check("every change reached every target (none lost)", missing == 0)
    result.check("the vault holds one version per change, in order", vault_wrong == 0)
    result.check("every change was set in Microsoft 365", graph_missing == 0)
    result.check(
        "every target ends at the last password",
        graph_last_wrong == 0 and docs_wrong == 0,
    )
    result.check("rotations rescheduled from the last change", due_wrong == 0)
