"""What an MTA in front of us may refuse at RCPT, before any data: the policy service's rules.

Refusing in the MTA's dialogue leaves the sending server to tell its user; accepting first
and refusing later would make the MTA bounce to a sender who may be forged (backscatter).
Asks the store, so call it off the event loop.
"""

from __future__ import annotations

from service.intake.receiving import may_refer
from service.reading.addresses import normalize
from service.reading.routing import Route, route
from service.settings import Settings
from store import queries


def rcpt_refusal(sender: str, recipient: str, settings: Settings) -> str | None:
    """The enhanced status and text to refuse this recipient with, or None to let it through.

    Only what care-intro itself would refuse for sure: an address of our domain that is not
    ours, and a request from a sender who may not refer and whom we asked nothing. The rest
    (other domains, answers, bounces to our envelope senders) is the MTA's or ours to judge.
    """
    address = normalize(recipient)
    destination = route(address, settings)
    if destination is None:
        if address.rpartition("@")[2] == settings.service.domain.lower():
            return f"5.1.1 <{address}>: no such mailbox here"
        return None
    if destination.route is not Route.REQUEST:
        return None
    if may_refer(sender, settings):
        return None
    # A party answering our question with a client that dropped the tag writes here.
    if queries.open_questions_to(normalize(sender)):
        return None
    return f"5.7.1 <{sender}> is not allowed to send requests here"
