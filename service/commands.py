"""Mail commands a referrer may send to the referral address instead of a request: "report"."""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage

from service import ids, letters, quota, replies, report
from service.addresses import Mailbox
from service.bodies import header_text
from service.context import Context
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
_PREFIX = re.compile(
    r"^\s*((re|aw|fw|fwd|wg|tr|rv|sv|rs|fw|رد|إعادة توجيه)\s*[:：]\s*)+", re.IGNORECASE
)


def asks_for_report(message: EmailMessage) -> bool:
    """Pure: the subject, or the whole new text, is just the word "report" (in any language).

    A request never looks like this: it names people and a need.
    """
    subject = _PREFIX.sub("", header_text(message, "Subject"))
    if _is_report_word(subject):
        return True
    lines = [line for line in replies.new_text(message).splitlines() if line.strip()]
    return not subject.strip() and len(lines) == 1 and _is_report_word(lines[0])


def send_report(ctx: Context, referrer: Mailbox, message: EmailMessage, now: datetime) -> bool:
    """Queue the referrer's own report; False when today's limit of such mail is reached."""
    figures = report.figures_for(referrer.address, None, now)
    with transaction():
        if not quota.may_write(ctx.settings, referrer.address, now):
            return False
        record = queries.referrer(referrer.address, ids.ask_key, now)
        mail = letters.report(
            ctx,
            record,
            referrer.name,
            language_of_command(message) or ctx.settings.service.default_language,
            figures,
            _message_id(message),
            now,
        )
        queries.enqueue([mail], now)
    return True


def language_of_command(message: EmailMessage) -> str | None:
    """Pure: the language of the word a command was written with, if it is one of ours."""
    subject = _PREFIX.sub("", header_text(message, "Subject"))
    lines = [line for line in replies.new_text(message).splitlines() if line.strip()]
    for text in (subject, lines[0] if lines else ""):
        if _is_report_word(text):
            return REPORT_WORDS[_word(text)]
    return None


def _word(text: str) -> str:
    return text.strip().strip(".!?:").strip().casefold()


def _is_report_word(text: str) -> bool:
    return _word(text) in REPORT_WORDS


def _message_id(message: EmailMessage) -> str | None:
    value = message.get("Message-ID")
    return " ".join(str(value).split()) or None if value else None
