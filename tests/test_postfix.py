"""The README's Postfix recipe, run: a real Postfix in front of a real `care-intro serve`.

Postfix takes mail for the domain and hands it on over SMTP or LMTP, asks the policy
service at RCPT, and relays what care-intro sends to a sink. What care-intro would refuse is
refused in Postfix's own dialogue, so Postfix never bounces it to a possibly forged sender.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.conftest import (
    ServeProcess,
    Sink,
    eventually,
    free_port,
    listening,
    make_settings,
)
from tests.helpers import PROSPECT, PROVIDER, RCPT, request_referral
from tests.postfix import PostfixInstance, needs_postfix

pytestmark = needs_postfix

STRANGER = "mallory@elsewhere.example"
NEXT_HOPS = {
    "smtp": "smtp:[127.0.0.1]:{port}",
    "lmtp": "lmtp:inet:127.0.0.1:{port}",
}


def recipe(domain: str, next_hop: str, policy_port: int, sink_port: int) -> str:
    """The main.cf lines the README shows, with this test's ports."""
    return "\n".join(
        [
            f"relay_domains = {domain}",
            f"transport_maps = inline:{{ {domain}={next_hop} }}",
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            f"smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:{policy_port}",
            f"relayhost = [127.0.0.1]:{sink_port}",
        ]
    )


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_behind_postfix_requests_arrive_and_refusals_bounce_nothing(
    tmp_path: Path, sink: Sink, protocol: str
):
    postfix_port = free_port()
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'care-intro.db'}", postfix_port)
    settings = settings.replace("inbound", protocol=protocol)
    settings = settings.replace("policy", port=free_port())
    serve = ServeProcess.in_folder(tmp_path, settings)
    next_hop = NEXT_HOPS[protocol].format(port=settings.inbound.port)
    postfix = PostfixInstance(
        postfix_port,
        recipe(settings.service.domain, next_hop, settings.policy.port, sink.port),
    )
    try:
        serve.start()
        eventually(lambda: listening(settings.policy.port), "the policy service listening")
        postfix.start()
        eventually(lambda: listening(postfix_port), "Postfix listening")

        # A request through Postfix reaches both parties (and the referrer's receipt).
        links = request_referral(postfix_port, sink)
        assert set(links) == {PROVIDER, PROSPECT}

        with smtplib.SMTP("127.0.0.1", postfix_port, timeout=30) as client:
            client.ehlo("mx.elsewhere.example")
            client.mail(STRANGER)
            code, text = client.rcpt(RCPT)
            assert code // 100 == 5 and b"5.7.1" in text, (code, text)
            assert f"<{STRANGER}> is not allowed to send requests here".encode() in text
            code, text = client.rcpt("nobody@intro.example.org")
            assert code // 100 == 5 and b"5.1.1" in text, (code, text)
            assert b"no such mailbox here" in text

        eventually(lambda: "Mail queue is empty" in postfix.queue(), "Postfix's queue empty", 30)
        bounces = [d for d in sink.deliveries if d.mail_from in ("", "<>")]
        assert bounces == [], "Postfix generated a bounce"
        assert "bounce" not in postfix.log_text().lower().replace("refer+b-", "")
    finally:
        postfix.stop()
        postfix.remove()
        serve.stop()
