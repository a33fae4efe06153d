"""The tables: raw inbound mail, referrals, their parties and events, and the outbox."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import peewee

from service.model import InboundState, OutboxState, State, SurveyState

# Every table's database: a proxy that store.db.bind points at SQLite or PostgreSQL at start.
database = peewee.DatabaseProxy()


# The same instant, aware and naive: the distance from one, added to the other, moves a
# moment between them exactly, in a tenth of what `replace(tzinfo=…)` costs (its keyword
# parsing), which every moment read or written paid.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


class UTCDateTimeField(peewee.DateTimeField):
    """Aware UTC in Python, naive UTC in the column, so SQLite and PostgreSQL compare alike."""

    def db_value(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("refusing to store a naive datetime")
        return super().db_value(_NAIVE_EPOCH + (value - _EPOCH))

    def python_value(self, value: object) -> datetime | None:
        moment = super().python_value(value)
        if isinstance(moment, datetime):
            if moment.utcoffset() is not None:  # a driver that already gave it a zone
                return moment.astimezone(UTC)
            return _EPOCH + (moment - _NAIVE_EPOCH)
        return moment


class Retention(enum.StrEnum):
    """How long a stored mail's body is still kept; NULL until retention first looked at it,
    which is how every mail is stored."""

    WITH_REFERRAL = "referral"  # until the mail of the referral it belongs to goes
    # As soon as it has gone out: it was still waiting when its referral's mail went, or
    # when one of the referral's people was forgotten.
    ONCE_SENT = "once-sent"
    GONE = "gone"  # let go: the body is empty


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class InboundMessage(BaseModel):
    """Every message accepted by SMTP or `submit`, stored raw before we answer 250."""

    dedupe_key = peewee.CharField(max_length=64, unique=True)
    message_id = peewee.TextField(null=True)
    envelope_from = peewee.TextField()
    recipients = peewee.TextField()
    via = peewee.CharField(max_length=8)
    raw = peewee.BlobField()
    received_at = UTCDateTimeField()
    state = peewee.CharField(max_length=16, default=InboundState.NEW)
    note = peewee.TextField(default="")
    processed_at = UTCDateTimeField(null=True)
    referrer_told = peewee.BooleanField(default=False)
    # Intake's claim on a message it works on, and until when: see queries.claim_inbound.
    claimed_by = peewee.CharField(max_length=200, default="")
    claimed_until = UTCDateTimeField(null=True)
    retention = peewee.CharField(max_length=12, null=True)


class Referral(BaseModel):
    ref = peewee.CharField(max_length=16, unique=True)
    state = peewee.CharField(max_length=16)
    referrer_email = peewee.CharField(max_length=320, index=True)
    referrer_name = peewee.TextField(default="")
    need = peewee.TextField()
    budget = peewee.TextField(default="")
    follow_up_days = peewee.FloatField(null=True)
    language = peewee.CharField(max_length=8)
    subject = peewee.TextField(default="")
    request_message_id = peewee.TextField(null=True)
    inbound = peewee.ForeignKeyField(InboundMessage, null=True, unique=True)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    expires_at = UTCDateTimeField()
    introduced_at = UTCDateTimeField(null=True)
    # When those who have not answered get their one reminder; None once it went (or never).
    remind_at = UTCDateTimeField(null=True)
    # The request said "Copy me: yes": the referrer is in the introduction's Cc.
    copy_me = peewee.BooleanField(default=False)
    # When retention let go of its mail, and of who its parties were; None until then.
    mail_let_go_at = UTCDateTimeField(null=True)
    people_let_go_at = UTCDateTimeField(null=True)


class Party(BaseModel):
    """One person to be introduced, with their one consent question."""

    referral = peewee.ForeignKeyField(Referral, backref="parties", on_delete="CASCADE")
    role = peewee.CharField(max_length=16)
    name = peewee.TextField(default="")
    email = peewee.CharField(max_length=320, index=True)
    phone = peewee.TextField(default="")
    prefers = peewee.TextField(default="")
    best_time = peewee.TextField(default="")
    booking = peewee.TextField(default="")
    language = peewee.CharField(max_length=8)
    # An IANA zone the request gave ("Prospect time zone: Europe/Berlin"); "" for the service's.
    timezone = peewee.CharField(max_length=64, default="")
    ask_key = peewee.CharField(max_length=40, unique=True)
    # The plus part of the address their answer by mail goes to; lower case, because some
    # MTAs fold the local part.
    reply_key = peewee.CharField(max_length=32, null=True, unique=True)
    answer = peewee.CharField(max_length=8, null=True)
    answered_at = UTCDateTimeField(null=True)
    answer_channel = peewee.CharField(max_length=16, null=True)
    decline_reason = peewee.CharField(max_length=16, null=True)
    decline_text = peewee.TextField(default="")
    # An unclear answer by mail is explained once per question, never more: no mail loops.
    unclear_told = peewee.BooleanField(default=False)
    # One reminder per question, never two: set when it is queued.
    reminded_at = UTCDateTimeField(null=True)
    # Consent evidence (Art. 7(1)): the question answered, the reply that answered it, the
    # language it was asked in, and the sha256 of the text shown (kept in ConsentText).
    question_message_id = peewee.TextField(null=True)
    answer_message_id = peewee.TextField(null=True)
    answer_language = peewee.CharField(max_length=8, null=True)
    consent_hash = peewee.CharField(max_length=64, null=True)
    # Someone who had said "never contact me again" is asked nothing; at this moment the
    # request ends as a no without reason, so the referrer cannot tell the two apart.
    withheld_until = UTCDateTimeField(null=True)
    # Once erased: the keyed hash of the address it had (the suppression list's, never the
    # address), so that "never contact me again" from one of its old mails still stops them.
    # NULL while the address is here, and on rows an earlier release erased.
    erased_hash = peewee.CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("referral", "role"), True),)


class Event(BaseModel):
    """One row per transition: what happened, to whom, when, through which channel."""

    referral = peewee.ForeignKeyField(Referral, backref="events", on_delete="CASCADE")
    at = UTCDateTimeField()
    kind = peewee.CharField(max_length=32)
    actor = peewee.CharField(max_length=16)
    channel = peewee.CharField(max_length=16)
    detail = peewee.TextField(default="")


class Survey(BaseModel):
    """One follow-up to one party after their introduction; a "not yet" adds the next round."""

    referral = peewee.ForeignKeyField(Referral, backref="surveys", on_delete="CASCADE")
    party = peewee.ForeignKeyField(Party, on_delete="CASCADE")
    round = peewee.IntegerField(default=1)
    state = peewee.CharField(max_length=12, default=SurveyState.SCHEDULED)
    survey_key = peewee.CharField(max_length=40, unique=True)  # what its links' tokens name
    reply_key = peewee.CharField(max_length=32, unique=True)  # its reply address's plus part
    due_at = UTCDateTimeField()
    sent_at = UTCDateTimeField(null=True)
    expires_at = UTCDateTimeField(null=True)
    answered_at = UTCDateTimeField(null=True)
    channel = peewee.CharField(max_length=16, null=True)
    rating = peewee.IntegerField(null=True)
    business = peewee.CharField(max_length=8, null=True)
    amount = peewee.DecimalField(max_digits=16, decimal_places=2, null=True)
    currency = peewee.CharField(max_length=3, default="")
    more = peewee.BooleanField(null=True)
    comment = peewee.TextField(default="")

    class Meta:
        indexes = ((("party", "round"), True),)


class OutboxMail(BaseModel):
    """One envelope of a mail rendered once to its final bytes; a retry resends exactly these.

    A mail to several people that must tell a failure for one from one for another (the
    introduction) has a row per envelope, all with the same bytes and Message-ID, as a
    mailing list sends with a VERP address per recipient.
    """

    message_id = peewee.CharField(max_length=255)
    purpose = peewee.CharField(max_length=32)
    referral = peewee.ForeignKeyField(Referral, null=True, on_delete="SET NULL")
    party = peewee.ForeignKeyField(Party, null=True, on_delete="SET NULL")
    bounce_key = peewee.CharField(max_length=32, null=True, unique=True)
    envelope_from = peewee.TextField()
    recipients = peewee.TextField()
    raw = peewee.BlobField()
    state = peewee.CharField(max_length=12, default=OutboxState.PENDING)
    attempts = peewee.IntegerField(default=0)
    created_at = UTCDateTimeField()
    due_at = UTCDateTimeField()
    sent_at = UTCDateTimeField(null=True)
    last_error = peewee.TextField(default="")
    # When the relay first answered this mail with a temporary refusal: the retry window runs
    # from there, not from when the mail was queued, so time the service was stopped or our
    # relay was down does not count against it. NULL while the relay never refused it.
    deferred_since = UTCDateTimeField(null=True)
    # The follow-up survey this mail carries, so a reply that lost its tag still finds it.
    survey = peewee.ForeignKeyField(Survey, null=True, on_delete="SET NULL")
    # When what depends on a failed mail (its referral, its survey) was told of the failure;
    # a failure is settled once, so it never tells anyone twice.
    settled_at = UTCDateTimeField(null=True)
    # Which process holds the claim ("host/pid/start"; "" when none), so a restarted instance
    # can take back at once what its killed predecessor held instead of waiting out a lease.
    claimed_by = peewee.CharField(max_length=160, default="")
    retention = peewee.CharField(max_length=12, null=True)
    # Once its recipient was erased: their address's keyed hash, as on Party.
    erased_hash = peewee.CharField(max_length=64, null=True)

    class Meta:
        # Not the Message-ID alone: one mail may go out as several envelopes.
        indexes = ((("message_id", "recipients"), True),)


class Referrer(BaseModel):
    """A referrer's own settings, and the opaque key their report and digest links name."""

    email = peewee.CharField(max_length=320, unique=True)
    key = peewee.CharField(max_length=40, unique=True)
    digest = peewee.BooleanField(default=True)
    # The weekly slot of the last digest they were sent: one digest per slot, never two.
    digest_slot = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()


class AllowedReferrer(BaseModel):
    """Who may refer besides those the configuration names: kept here so that adding one
    takes effect in every running instance at once, without a restart."""

    email = peewee.CharField(max_length=320, unique=True)
    name = peewee.TextField(default="")
    added_at = UTCDateTimeField()


class Suppression(BaseModel):
    """An address that asked never to hear from us again, kept only as a keyed hash."""

    address_hash = peewee.CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField()


class ConsentText(BaseModel):
    """The exact text a party was shown when they answered, once per distinct text."""

    text_hash = peewee.CharField(max_length=64, unique=True)
    text = peewee.TextField()
    created_at = UTCDateTimeField()


class StoreKey(BaseModel):
    """Keys that must outlive any rotation of the link keys (the suppression hash's key)."""

    name = peewee.CharField(max_length=32, unique=True)
    value = peewee.CharField(max_length=128)


# The "what is due" questions are asked every few seconds; partial indexes keep them
# proportional to what is waiting, not to everything ever stored.
InboundMessage.add_index(
    InboundMessage.index(InboundMessage.received_at).where(InboundMessage.state == InboundState.NEW)
)
OutboxMail.add_index(
    OutboxMail.index(OutboxMail.due_at).where(OutboxMail.state == OutboxState.PENDING)
)
OutboxMail.add_index(OutboxMail.index(OutboxMail.recipients, OutboxMail.created_at))
OutboxMail.add_index(
    OutboxMail.index(OutboxMail.id).where(
        (OutboxMail.state == OutboxState.FAILED) & OutboxMail.settled_at.is_null()
    )
)
# Who holds claims is asked at every start: only the few mails being sent are in this index.
OutboxMail.add_index(
    OutboxMail.index(OutboxMail.claimed_by).where(
        (OutboxMail.state == OutboxState.PENDING) & (OutboxMail.claimed_by != "")
    )
)
Referral.add_index(Referral.index(Referral.expires_at).where(Referral.state == State.ASKING))
Referral.add_index(
    Referral.index(Referral.remind_at).where(
        (Referral.state == State.ASKING) & Referral.remind_at.is_null(False)
    )
)
Party.add_index(Party.index(Party.withheld_until).where(Party.withheld_until.is_null(False)))
# Erasing someone asks whether another party was shown the same consent text.
Party.add_index(Party.index(Party.consent_hash).where(Party.consent_hash.is_null(False)))

Survey.add_index(Survey.index(Survey.due_at).where(Survey.state == SurveyState.SCHEDULED))
Survey.add_index(Survey.index(Survey.expires_at).where(Survey.state == SurveyState.SENT))
# Retention asks what it has not yet finished with: mail it has not looked at, mail waiting
# to go once sent, ended referrals whose mail or people it has not let go of. What it is done
# with leaves these indexes, so its questions do not grow with the store's history.
InboundMessage.add_index(
    InboundMessage.index(
        InboundMessage.received_at,
        where=InboundMessage.retention.is_null(),
        name="inbound_message_body_unseen",
    )
)
OutboxMail.add_index(
    OutboxMail.index(
        OutboxMail.created_at,
        where=OutboxMail.retention.is_null(),
        name="outbox_mail_body_unseen",
    )
)
OutboxMail.add_index(
    OutboxMail.index(
        OutboxMail.id,
        where=OutboxMail.retention == Retention.ONCE_SENT,
        name="outbox_mail_body_once_sent",
    )
)
Referral.add_index(
    Referral.index(
        Referral.state,
        Referral.updated_at,
        where=Referral.mail_let_go_at.is_null(),
        name="referral_mail_kept",
    )
)
Referral.add_index(
    Referral.index(
        Referral.state,
        Referral.updated_at,
        where=Referral.people_let_go_at.is_null(),
        name="referral_people_kept",
    )
)
# The digest asks what happened in a week; reports ask since a date.
Event.add_index(Event.index(Event.at))

ALL_MODELS = [
    InboundMessage,
    Referral,
    Party,
    Event,
    Survey,
    OutboxMail,
    Referrer,
    Suppression,
    StoreKey,
    AllowedReferrer,
    ConsentText,
]
