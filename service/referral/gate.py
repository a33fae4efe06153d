"""Pure: the CARE gate — is this draft a referral we may act on, and if not, why not."""

from __future__ import annotations

import re

from service.model import Finding, Problem, Role, Suggestion
from service.reading.addresses import normalize
from service.reading.request import PartyDraft, RequestDraft
from store.records import ReferralRecord

# "Accounting" or "help needed" says nothing a provider can judge relevance by (CARE's A).
MIN_NEED_WORDS = 3
_WORDS = re.compile(r"\w+")


def care_gate(draft: RequestDraft, referrer: str, own_domain: str) -> list[Finding]:
    """Every reason at once, so the referrer can fix the request in one go. `own_domain`
    is the service's mail domain (`service.domain`).

    Whether someone said "never contact me again" is no reason here: a refusal would tell
    the referrer (see `referral.withheld`).
    """
    findings: list[Finding] = []
    need = draft.need.strip()
    if not need:
        findings.append(Finding(Problem.NO_NEED))
    elif len(_WORDS.findall(need)) < MIN_NEED_WORDS:
        findings.append(Finding(Problem.NEED_TOO_SHORT, given=need))
    for party in (draft.provider, draft.prospect):
        findings.extend(_party_findings(party, referrer, own_domain))
    provider, prospect = draft.provider.mailbox, draft.prospect.mailbox
    if provider and prospect and provider.address == prospect.address:
        findings.append(Finding(Problem.SAME_PERSON, given=provider.address))
    if draft.follow_up and draft.follow_up_days is None:
        # Refused like an address we cannot read, not quietly replaced by the default: the
        # referrer asked for a moment, and would learn it was not theirs only weeks later.
        findings.append(Finding(Problem.INVALID_FOLLOW_UP, given=draft.follow_up))
    return findings


def _party_findings(party: PartyDraft, referrer: str, own_domain: str) -> list[Finding]:
    if party.mailbox is None:
        if party.given:
            return [Finding(Problem.INVALID_ADDRESS, party.role, party.given)]
        return [Finding(Problem.MISSING_PARTY, party.role)]
    if party.mailbox.address == normalize(referrer):
        return [Finding(Problem.PARTY_IS_REFERRER, party.role, party.mailbox.address)]
    if party.mailbox.address.rpartition("@")[2] == own_domain.strip().lower():
        # refer@, refer+tag@ or any other address of ours: its question would come back to
        # us, nobody could answer it, and the referrer would hear "no answer" two weeks on.
        return [Finding(Problem.PARTY_IS_SERVICE, party.role, party.mailbox.address)]
    return []


def suggestions(referral: ReferralRecord) -> list[Suggestion]:
    """What would make an accepted referral better, for the receipt's checklist."""
    parties = referral.parties
    wanted = []
    if not all(p.prefers for p in parties):
        wanted.append(Suggestion.PREFERRED_CONTACT)
    if not all(p.best_time for p in parties):
        wanted.append(Suggestion.BEST_TIME)
    if not referral.party(Role.PROVIDER).booking:
        wanted.append(Suggestion.BOOKING)
    if not referral.budget:
        wanted.append(Suggestion.BUDGET)
    return wanted
