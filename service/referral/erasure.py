"""Forgetting a person: their open referrals end as if they withdrew, then everything stored
that names them is overwritten; and retention, which does the same to what is old enough."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.errors import NotFound
from service.model import Answer, Channel, State
from service.referral import optouts, workflow
from service.writing.context import Context
from store import erasure, queries, retention
from store.db import transaction
from store.erasure import Erased

# How much one tick lets go of, so a store with years of history catches up over several
# ticks instead of holding the write lock for minutes.
BATCH = 500


def forget(ctx: Context, address: str, channel: Channel, now: datetime) -> Erased:
    """Erase a person by address; counts by kind (all zero when there is nothing left)."""
    address = address.strip().lower()
    _withdraw(ctx, address, channel, now)
    with transaction():
        ids = [party_id for party_id, _ in erasure.parties_of(address)]
        done = erasure.erase_parties(ids, now, address)
    erasure.flush_files()
    return done


def _withdraw(ctx: Context, address: str, channel: Channel, now: datetime) -> None:
    """An open question ends as their no: the other party learns only that it will not go
    ahead, the referrer that this person withdrew."""
    for _, _, ask_key in queries.open_questions_to(address):
        try:
            workflow.answer(ctx, ask_key, Answer.NO, channel, now)
        except NotFound:
            continue  # erased or gone in between: nothing left to withdraw


def forget_when_done(ctx: Context, address: str, now: datetime) -> Erased:
    """After "never contact me again": forget them once no open referral needs them.

    An introduced referral still waits for their survey, so it keeps them until it ends.
    """
    address = address.strip().lower()
    open_states = {State.RECEIVED, State.ASKING, State.INTRODUCED, State.EVALUATING}
    for _, referral_id in erasure.parties_of(address):
        referral = queries.referral_by_id(referral_id)
        if referral is not None and State(referral.state) in open_states:
            return Erased()
    return forget(ctx, address, Channel.LINK, now)


def stop(ctx: Context, subject: str, erase: bool, now: datetime) -> bool:
    """After "never contact me again" from an opt-out link: their cleartext goes as soon as no open
    referral needs it, or at once when they asked us to delete what we hold. False if they
    had already said stop. AddressGone when the link's address was erased without its hash:
    nothing can be stopped, and the page must not say it was."""
    who = optouts.addressee_of_optout(subject)
    first = workflow.opt_out_of(ctx, who, Channel.LINK, now)
    if who.address is None:
        return first  # nothing held names them any more: nothing left to forget
    if erase:
        forget(ctx, who.address, Channel.LINK, now)
    else:
        forget_when_done(ctx, who.address, now)
    return first


def let_go(ctx: Context, now: datetime, batch: int = BATCH) -> retention.Swept:
    """Retention, one bounded batch: bodies of old mail, then the people of old referrals;
    how many bodies and people it let go of, and whether it found anything due (false: a
    next batch now would find nothing either)."""
    privacy = ctx.settings.privacy
    with transaction():
        swept = retention.let_mail_go(now - timedelta(days=privacy.keep_mail_days), now, batch)
        # Two parties to a referral: about as many people as mails.
        people_before = now - timedelta(days=privacy.keep_people_days)
        due = retention.people_to_let_go(people_before, max(batch // 2, 1))
        by_address: dict[str, list[int]] = {}
        for party_id, email in due.parties:
            by_address.setdefault(email, []).append(party_id)
        # Grouped by person, so one placeholder keeps them one person in the report.
        count = 0
        for ids in by_address.values():
            done = erasure.erase_parties(ids, now)
            count += done.parties + done.inbound_mails + done.sent_mails
        retention.people_let_go(due.referrals, now)
        swept += retention.Swept(count, len(due.referrals))
    if swept.let_go:
        erasure.flush_files()
    return swept
