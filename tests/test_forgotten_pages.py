"""The page behind a forgotten person's consent link, after a real `care-intro forget`: it
says their details were erased, never that they said no, and records nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from store import queries
from tests.conftest import write_config
from tests.helpers import PROSPECT, PROVIDER, request_referral, web


def forget(tmp_path, service, address: str) -> None:
    config = write_config(tmp_path / "forget.toml", service.settings)
    done = subprocess.run(
        [sys.executable, "-m", "service", "forget", address, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr


def snapshot():
    [referral] = queries.recent_referrals()
    return referral.state, [(p.answer, p.answered_at) for p in referral.parties]


def words(page) -> str:
    return " ".join(page.text.split())


@pytest.mark.parametrize("answered", [False, True], ids=["open-question", "had-said-yes"])
def test_a_forgotten_persons_page_says_they_were_erased_not_that_they_said_no(
    tmp_path, running, sink, answered
):
    links = request_referral(running.service.smtp_port, sink)
    if answered:
        web.post(links[PROVIDER], data={"answer": "yes"})
    forget(tmp_path, running, PROVIDER)
    [referral] = queries.recent_referrals()
    assert referral.party("provider").erased and referral.state == "declined"
    before = snapshot()
    for page in (
        web.get(links[PROVIDER]),
        web.get(links[PROVIDER] + "?answer=yes"),
        web.post(links[PROVIDER], data={"answer": "yes"}),
        web.post(links[PROVIDER], data={"answer": "no"}),
    ):
        said = words(page)
        assert page.status_code == 410
        assert "We no longer hold your details" in said
        assert "this question is closed" in said and "Nobody has been given your details" in said
        assert "You said no" not in said and "Your no stands" not in said
        assert 'method="post"' not in page.text
    assert snapshot() == before
    # The other party's page is theirs as before: the question is closed for them.
    assert "This question is closed" in web.get(links[PROSPECT]).text


def test_a_forgotten_introduced_persons_page_says_the_introduction_went_before(
    tmp_path, running, sink
):
    links = request_referral(running.service.smtp_port, sink)
    for who in (PROVIDER, PROSPECT):
        web.post(links[who], data={"answer": "yes"})
    forget(tmp_path, running, PROSPECT)
    page = web.get(links[PROSPECT])
    said = words(page)
    assert page.status_code == 410 and "We no longer hold your details" in said
    assert "The introduction had been sent before that" in said
    assert "Nobody has been given your details" not in said
