"""Mail commands a referrer may send to the referral address instead of a request: "report"."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from service import ids
from service.evaluation import letters, report
from service.reading import quotes
from service.reading.addresses import Mailbox
from service.reading.bodies import header_text
from service.reading.request import SUBJECT_PREFIX
from service.referral import quota
from service.writing.context import Context
from store import queries
from store.db import transaction

# The word alone, in each of our languages, in the subject or as the whole message; the
# word also says which language to answer in.
REPORT_WORDS = {
    "report": "en",
    "bericht": "de",
    "rapport": "fr",
    "raport": "ro",
    "laporan": "id",
    "تقرير": "ar",
    "التقرير": "ar",
}


def report_language(message: EmailMessage) -> str | None:
    """Pure: the language to answer in when the subject, or else the whole new text, is just
    the word "report" in one of our languages; None when the message is no such command.

    A request never looks like this: it names people and a need.
    """
    subject = _word(SUBJECT_PREFIX.sub("", header_text(message, "Subject")))
    if subject:
        return REPORT_WORDS.get(subject)
    lines = [line for line in quotes.new_text(message).splitlines() if line.strip()]
    return REPORT_WORDS.get(_word(lines[0])) if len(lines) == 1 else None


def send_report(
    ctx: Context,
    referrer: Mailbox,
    language: str,
    in_reply_to: str | None,
    now: datetime,
    about: str = "a report request",
) -> bool:
    """Queue the referrer's own report; False when today's reports to them are used up."""
    figures = report.figures_for(referrer.address, None, now)
    with transaction():
        if not quota.may_report(ctx.settings, referrer.address, now, about):
            return False
        record = queries.referrer(referrer.address, ids.ask_key, now)
        mail = letters.report(ctx, record, referrer.name, language, figures, in_reply_to, now)
        queries.enqueue([mail], now)
    return True


def _word(text: str) -> str:
    return text.strip().strip(".!?:").strip().casefold()
