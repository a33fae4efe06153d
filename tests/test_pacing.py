"""While mail arrives, intake leaves the CPU to the SMTP edge, for a bounded time only."""

from __future__ import annotations

import pytest

from service.edge.pacing import LONGEST_REST_SECONDS, Arrivals


def test_a_quiet_edge_never_holds_intake_back():
    arrivals = Arrivals(quiet=0.05, patience=2.0)
    assert arrivals.pause(100.0) == 0
    arrivals.arrived(100.0)
    assert arrivals.pause(100.06) == 0
    assert arrivals.rest(100.06, spent=0.5) == 0


def test_intake_waits_for_a_quiet_moment_while_mail_arrives():
    arrivals = Arrivals(quiet=0.05, patience=2.0)
    arrivals.arrived(100.0)
    arrivals.arrived(100.03)
    assert 0 < arrivals.pause(100.04) <= 0.05


def test_a_message_waits_no_longer_than_the_patience():
    arrivals = Arrivals(quiet=0.05, patience=2.0)
    for step in range(100):  # a message every 30 ms for three seconds
        arrivals.arrived(100.0 + step * 0.03)
    assert arrivals.pause(102.98) == 0  # the first has waited 2.98 s
    assert arrivals.pause(101.0) == pytest.approx(0.05)


@pytest.mark.parametrize("spent", [0.01, 0.2, 5.0])
def test_past_its_patience_intake_works_a_third_of_the_time(spent):
    arrivals = Arrivals(quiet=0.05, patience=2.0, share=1 / 3)
    arrivals.arrived(100.0)
    rest = arrivals.rest(100.01, spent)
    assert rest == pytest.approx(min(2 * spent, LONGEST_REST_SECONDS))


def test_once_drained_the_next_message_starts_a_new_wait():
    arrivals = Arrivals(quiet=0.05, patience=2.0)
    arrivals.arrived(100.0)
    arrivals.drained()
    arrivals.arrived(103.0)
    assert arrivals.pause(103.01) > 0  # 3 s after the first, but the new one is fresh
