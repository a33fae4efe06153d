"""Pure: the CARE gate — is this draft a referral we may act on, and if not, why not."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from service.addresses import normalize
from service.labels import PROSPECT, PROVIDER
from service.parsing import PartyDraft, RequestDraft


class Problem(enum.StrEnum):
    NO_NEED = "no_need"
    MISSING_PARTY = "missing_party"
    INVALID_ADDRESS = "invalid_address"
    SAME_PERSON = "same_person"
    PARTY_IS_REFERRER = "party_is_referrer"


@dataclass(frozen=True)
class Finding:
    problem: Problem
    role: str | None = None
    given: str = ""


def care_gate(draft: RequestDraft, referrer: str) -> list[Finding]:
    """Every reason at once, so the referrer can fix the request in one go."""
    findings: list[Finding] = []
    if not draft.need.strip():
        findings.append(Finding(Problem.NO_NEED))
    for party in (draft.provider, draft.prospect):
        findings.extend(_party_findings(party, referrer))
    provider, prospect = draft.provider.mailbox, draft.prospect.mailbox
    if provider and prospect and provider.address == prospect.address:
        findings.append(Finding(Problem.SAME_PERSON, given=provider.address))
    return findings


def _party_findings(party: PartyDraft, referrer: str) -> list[Finding]:
    if party.mailbox is None:
        if party.given:
            return [Finding(Problem.INVALID_ADDRESS, party.role, party.given)]
        return [Finding(Problem.MISSING_PARTY, party.role)]
    if party.mailbox.address == normalize(referrer):
        return [Finding(Problem.PARTY_IS_REFERRER, party.role, party.mailbox.address)]
    return []


__all__ = ["PROSPECT", "PROVIDER", "Finding", "Problem", "care_gate"]
