"""How much mail one address may get that no referral's step sent: never flood anyone.

Questions, reminders, introductions and the notices a referral's steps send are never held
back. What nobody asked for in a step (a refused request, a message we could not read, how
to answer, why a no cannot become a yes) is capped per address and day, so no loop with a
robot or a confused sender can run up a pile of mail. A report is different: the referrer
asked for it, so it does not use up that allowance; it has its own daily cap, so a loop of
"report" mails still ends.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from service.settings import Settings
from store import queries

log = logging.getLogger(__name__)

UNPROMPTED = ("request_refused", "request_unreadable", "reply_unclear", "no_stands")
REPORT = "report"


def may_write(settings: Settings, address: str, now: datetime, purpose: str, about: str) -> bool:
    """Whether one more unprompted mail to `address` stays within the day's limit.

    `purpose` is the mail's kind (one of UNPROMPTED) and `about` what prompted it (an
    inbound message's or a referral's id): the warning names those, never the address.
    """
    sent = queries.count_mails_to(address, UNPROMPTED, now - timedelta(days=1))
    if sent < settings.outbound.daily_limit_per_address:
        return True
    log.warning(
        "not sending %s about %s: its recipient already had %d unprompted mail(s) today",
        purpose,
        about,
        sent,
    )
    return False


def may_report(settings: Settings, address: str, now: datetime, about: str) -> bool:
    """Whether one more answer to a "report" mail from `address` stays within the day's cap.

    `about` names what asked (an inbound message's id) for the warning, never the address.
    """
    sent = queries.count_mails_to(address, (REPORT,), now - timedelta(days=1))
    if sent < settings.outbound.daily_reports_per_referrer:
        return True
    log.warning("not sending a report about %s: its referrer already had %d today", about, sent)
    return False
