"""What the command line prints about what happened: a referral's history, counts, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32, default

from service.clock import zone
from service.model import Role, State
from service.reading.bodies import body_text, header_text, raw_header_text
from service.reading.limits import Limits, message_excess
from store import queries, referrers
from store.records import InboundRecord, PartyRecord

STATE_ORDER = tuple(state.value for state in State)
_HEADERS = BytesHeaderParser(policy=compat32)
_SHOWN = (
    "from",
    "sender",
    "to",
    "subject",
    "date",
    "message-id",
    "content-type",
    "authentication-results",
)


def _when(moment: datetime | None, timezone: str) -> str:
    """A stored moment (UTC) as the operator reads a clock: in service.timezone."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(timezone) or UTC).strftime("%Y-%m-%d %H:%M %Z")


def _who(name: str, email: str) -> str:
    return f"{name} <{email}>" if name else email


def _answer(party: PartyRecord, timezone: str) -> str:
    if party.answer is None:
        return "no answer yet"
    return f"said {party.answer} by {party.answer_channel}, {_when(party.answered_at, timezone)}"


def status(ref: str, timezone: str = "UTC") -> str | None:
    referral = queries.referral_by_ref(ref)
    if referral is None:
        return None
    lines = [
        f"{referral.ref}  {referral.state}",
        f"  referrer  {_who(referral.referrer_name, referral.referrer_email)}",
    ]
    for party in referral.parties:
        lines.append(
            f"  {party.role:<9} {_who(party.name, party.email)}  ({_answer(party, timezone)})"
        )
    lines += [
        # A need from a forward has paragraphs: keep them under the column they start in.
        "  need      " + referral.need.replace("\n", "\n" + " " * 12),
        f"  created   {_when(referral.created_at, timezone)}",
        f"  open till {_when(referral.expires_at, timezone)}",
    ]
    if referral.introduced_at:
        lines.append(f"  introduced {_when(referral.introduced_at, timezone)}")
    lines.append("history")
    for event in queries.events_for(referral.id):
        detail = f"  {event.detail}" if event.detail else ""
        lines.append(
            f"  {_when(event.at, timezone)}  {event.kind:<16} {event.actor:<9}"
            f" via {event.channel}{detail}"
        )
    lines.append("mail")
    for purpose, state, recipients in queries.outbox_for_referral(referral.id):
        lines.append(f"  {purpose:<20} {state:<8} to {', '.join(recipients)}")
    return "\n".join(lines) + "\n"


def summary(referrer: str | None = None, timezone: str = "UTC") -> str:
    counts = queries.referral_counts(referrer)
    total = sum(counts.values())
    heading = f"referrals of {referrer}" if referrer else "referrals"
    lines = [f"{heading}: {total}"]
    for state in (*STATE_ORDER, *sorted(set(counts) - set(STATE_ORDER))):
        if counts.get(state):
            lines.append(f"  {state:<14} {counts[state]}")
    recent = queries.recent_referrals(referrer, limit=20)
    if recent:
        lines.append("latest")
        for r in recent:
            people = sorted(r.parties, key=lambda p: p.role != Role.PROVIDER)
            names = " -> ".join(p.display for p in people)
            lines.append(f"  {r.ref}  {r.state:<12} {_when(r.created_at, timezone)}  {names}")
    if not referrer:
        mail = queries.outbox_counts()
        if mail:
            lines.append("outbox  " + ", ".join(f"{k} {v}" for k, v in sorted(mail.items())))
    return "\n".join(lines) + "\n"


def referrers_list(configured: tuple[str, ...], timezone: str = "UTC") -> str:
    """Everyone who may refer: the store's, then the configuration's, each saying where from."""
    lines = [
        f"{_who(r.name, r.email)}\tadded {_when(r.added_at, timezone)}" for r in referrers.listed()
    ]
    lines += [f"{pattern}\tfrom the configuration" for pattern in configured]
    return "".join(f"{line}\n" for line in lines) or "nobody may refer yet\n"


def inbound_line(inbound_id: int) -> str:
    """What became of one stored message, for `submit`."""
    record = queries.inbound_by_id(inbound_id)
    if record is None:
        return f"message {inbound_id}: not found"
    return _describe(record)


def quarantine_list(timezone: str = "UTC") -> str:
    found = queries.quarantined()
    if not found:
        return "quarantine is empty\n"
    lines = [f"{len(found)} message(s) in quarantine (newest first)"]
    for record in found:
        headers = _HEADERS.parsebytes(record.raw)
        lines.append(
            f"  {record.id:>6}  {_when(record.received_at, timezone)}"
            f"  {header_text(headers, 'From') or '?'}"
            f'  "{header_text(headers, "Subject")}"  {record.note}'
        )
    return "\n".join(lines) + "\n"


def quarantine_show(inbound_id: int, limits: Limits, timezone: str = "UTC") -> str | None:
    """One quarantined message for a person; one too large or deep to parse shows its headers."""
    record = queries.inbound_by_id(inbound_id)
    if record is None:
        return None
    excess = message_excess(record.raw, limits)
    if excess is None:
        text = body_text(BytesParser(policy=default).parsebytes(record.raw))
        preview = "\n".join((text or "(no readable text)").strip().split("\n")[:40])
    else:
        preview = f"(the body is not shown: {excess.text[0].lower()}{excess.text[1:]})"
    # Headers the way they arrived, decoded without the stdlib's header parser, which a
    # hostile header can make take gigabytes.
    headers = _HEADERS.parsebytes(record.raw)
    return (
        "\n".join(
            [
                f"message {record.id}  {record.state}",
                f"  received  {_when(record.received_at, timezone)} via {record.via}",
                f"  envelope  from <{record.envelope_from}> to {', '.join(record.recipients)}",
                f"  reason    {record.note or '-'}",
                "",
                *[
                    f"{name}: {raw_header_text(str(value))}"
                    for name, value in headers.raw_items()
                    if name.lower() in _SHOWN
                ],
                "",
                preview,
            ]
        )
        + "\n"
    )


def _describe(record: InboundRecord) -> str:
    return f"message {record.id}: {record.state}" + (f", {record.note}" if record.note else "")
