"""What `care-intro evidence REF` prints: per party, the answer, how it came, and the text."""

from __future__ import annotations

from datetime import UTC

from service.clock import zone
from store.consent import Evidence


def render(ref: str, found: list[Evidence], timezone: str = "UTC") -> str:
    lines = [f"{ref}: consent evidence"]
    for party in found:
        lines.append("")
        if party.answer is None or party.answered_at is None:
            lines.append(f"{party.role}: no answer")
            continue
        when = party.answered_at.astimezone(zone(timezone) or UTC)
        lines += [
            f"{party.role}: {party.answer} by {party.channel}",
            f"  when      {when.isoformat()}",
            f"  question  {party.question_message_id or '-'}",
        ]
        if party.answer_message_id:
            lines.append(f"  reply     {party.answer_message_id}")
        if party.decline_reason:
            lines.append(f"  reason    {party.decline_reason}")
        lines += [
            f"  language  {party.language or '-'}",
            f"  sha256    {party.consent_hash or '-'}",
        ]
        if party.text is None:
            # Answers recorded before the evidence was kept have none.
            lines.append("  shown     (not recorded)")
            continue
        lines.append("  shown:")
        lines += [f"    | {line}".rstrip() for line in party.text.splitlines()]
    return "\n".join(lines) + "\n"
