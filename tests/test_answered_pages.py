"""What the page behind a consent link says once answered, for every state a referral can
be in, in every language: a referral that reached the introduction never reads as if it had
not happened, and one that ended never reads as if it still might."""

from __future__ import annotations

import pytest

from service.model import State
from service.settings import LANGUAGES
from service.tokens import Purpose
from service.writing.compose import Templates
from store import queries
from tests.helpers import PROVIDER, web

REACHED = frozenset({State.INTRODUCED, State.EVALUATING, State.EVALUATED})
ENDED = frozenset({State.DECLINED, State.EXPIRED, State.UNDELIVERABLE})

# A few words of each page's sentence, by language: that they were introduced (both wordings,
# the moment of the introduction and any time after), that it waits for the other, and
# that it will not go ahead.
SAYS = {
    "en": (
        ("the introduction is on its way", "You were both introduced"),
        "We will introduce you as soon as",
        "will not go ahead",
    ),
    "de": (
        ("die Vorstellung ist also schon unterwegs", "Sie wurden einander bereits vorgestellt"),
        "Sobald die andere Person ebenfalls zustimmt",
        "nicht zustande",
    ),
    "fr": (
        ("la mise en relation arrive dans votre boîte", "Vous avez déjà été mis en relation"),
        "Nous ferons la mise en relation dès que",
        "n'aura pas lieu",
    ),
    "ro": (
        ("este deja pe drum", "V-am pus deja în legătură"),
        "Vă vom pune în legătură imediat ce",
        "nu va avea loc",
    ),
    "id": (
        ("email perkenalannya sedang dikirim", "Anda berdua sudah diperkenalkan"),
        "Kami akan memperkenalkan Anda begitu",
        "tidak jadi dilanjutkan",
    ),
    "ar": (
        ("ورسالة التعارف في طريقها", "تم التعارف بينكما بالفعل"),
        "سنعرّف أحدكما بالآخر فور",
        "لن يتم",
    ),
}
TEMPLATES = Templates()


def answers_possible(state: State) -> list[tuple[str, str]]:
    """(answer, outcome) a page in this state can show: after the introduction only a yes
    was given; a referral that ended may have either."""
    if state in REACHED:
        return [("yes", "recorded"), ("yes", "already")]
    if state in ENDED:
        return [(a, o) for a in ("yes", "no") for o in ("recorded", "already", "no_stands")]
    return [("yes", "recorded"), ("yes", "already")]


CASES = [
    pytest.param(lang, state, answer, outcome, id=f"{lang}-{state}-{answer}-{outcome}")
    for lang in LANGUAGES
    for state in State
    for answer, outcome in answers_possible(state)
]


def page(lang: str, state: State, answer: str, outcome: str) -> str:
    context = {
        "action": "/c/t",
        "referrer": "Ada Lovelace",
        "answer": answer,
        "outcome": outcome,
        "state": state.value,
        "can_change": False,
        "expires_at": None,
        "optout_url": "http://x/u/t",
        "sender_name": "Introductions",
        "timezone": "UTC",
    }
    return " ".join(TEMPLATES.render_page("consent_answered", lang, context).split())


def test_every_language_is_covered():
    assert set(SAYS) == set(LANGUAGES)


@pytest.mark.parametrize(("lang", "state", "answer", "outcome"), CASES)
def test_the_answered_page_says_what_became_of_the_introduction(lang, state, answer, outcome):
    introduced, waiting, not_ahead = SAYS[lang]
    text = page(lang, state, answer, outcome)
    said_introduced = any(phrase in text for phrase in introduced)
    if state in REACHED:
        assert said_introduced
        assert waiting not in text and not_ahead not in text
    elif state in ENDED:
        assert not_ahead in text
        assert not said_introduced and waiting not in text
    else:
        assert waiting in text
        assert not said_introduced and not_ahead not in text


def test_the_consent_page_of_a_referral_being_evaluated_says_they_were_introduced(surveyed):
    """Through the running pages: the surveys went out, and the old consent link still
    says what happened, not that it waits for the other person."""
    assert queries.referral_by_id(surveyed.referral.id).state == "evaluating"
    ask_key = surveyed.referral.party("provider").ask_key
    token = surveyed.ctx.tokens.make(Purpose.CONSENT, ask_key)
    base = surveyed.links[PROVIDER].rsplit("/s/", 1)[0]
    page = web.get(f"{base}/c/{token}")
    words = " ".join(page.text.split())
    assert page.status_code == 200 and "You have already answered" in words
    assert "You were both introduced" in words
    assert "as soon as the other person agrees" not in words
