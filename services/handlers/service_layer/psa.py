"""``psa.contact.link``: link the account to its contact in the PSA (docs/contract.md §7).

Search, then decide by the rule (``domain/matching``): one match links
(``matched``), none creates when the command allows it (``created``, the
account's key marked on the record) or ends ``not_found``, more than one is
``ambiguous_match`` with the candidates in ``refs``. A record carrying our
mark is one we created on an earlier attempt whose result was lost: it is
reported ``created`` again, never created twice. A create whose answer was
lost (``MaybeDone``) is searched for again before anything else is tried.
"""

import re

from schemas.commands import PsaContactLink
from schemas.results import ContactInfo, FailureReason, Outcome, Ref
from services.handlers.domain.errors import MaybeDone
from services.handlers.domain.execution import Execution
from services.handlers.domain.markers import marker
from services.handlers.domain.matching import (
    ContactQuery,
    contact_query,
    matching_contacts,
    names_for,
)
from services.handlers.domain.records import NewContact, PsaContact
from services.handlers.service_layer.ports import PsaConnector

REDO_LIMIT = 5
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _ref(system: str, contact: PsaContact) -> Ref:
    return Ref(system=system, kind="contact", id=contact.id, url=contact.url)


def _contact_info(contact: PsaContact) -> ContactInfo:
    email = next((e for e in contact.emails if _EMAIL.match(e) and len(e) <= 320), None)
    phone = (contact.phone or "").strip()[:64] or None
    return ContactInfo(email=email, phone=phone)


def _linked(system: str, contact: PsaContact, outcome: Outcome, detail: str) -> Execution:
    return Execution.succeeded(
        outcome, detail, refs=(_ref(system, contact),), contact=_contact_info(contact)
    )


async def link_contact(command: PsaContactLink, psa: PsaConnector) -> Execution:
    account = command.account
    query = contact_query(account)
    first, last = names_for(account)
    mark = marker(account.key, psa.marker_limit)
    # With nothing to match by, still look where a create of ours would be.
    search = query if query.usable else ContactQuery(full_name=f"{first} {last}".strip())
    company = command.company_id
    for _ in range(REDO_LIMIT):
        candidates = await psa.search_contacts(company, search)
        ours = [c for c in candidates if c.marker == mark]
        if ours:
            return _linked(psa.system, ours[0], Outcome.CREATED, "created (found on a redo)")
        matches = matching_contacts(query, candidates) if query.usable else []
        by = f"email {query.email}" if query.email else f"name {query.full_name!r}"
        if len(matches) == 1:
            return _linked(psa.system, matches[0], Outcome.MATCHED, f"matched by {by}")
        if len(matches) > 1:
            return Execution.failed(
                FailureReason.AMBIGUOUS_MATCH,
                f"{len(matches)} contacts of company {company} match by {by}; none linked",
                refs=tuple(_ref(psa.system, c) for c in matches),
            )
        if not command.create_if_missing:
            why = (
                f"no contact of company {company} matches by {by}"
                if query.usable
                else ("the account has no email, user principal name or display name to match by")
            )
            return Execution.succeeded(Outcome.NOT_FOUND, why)
        new = NewContact(
            first_name=first, last_name=last, email=query.email, phone=account.phone, marker=mark
        )
        try:
            created = await psa.create_contact(company, new)
        except MaybeDone:
            continue  # the create may have happened: look again before creating
        return _linked(psa.system, created, Outcome.CREATED, f"created in company {company}")
    raise MaybeDone(f"a create in company {company} kept failing without an answer")
