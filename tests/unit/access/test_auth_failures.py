"""Failed authentication per address: counting, blocking, doubling, forgetting."""

from __future__ import annotations

import pytest

from proxy.access.addresses import client_address, is_loopback, trusted_networks
from proxy.access.auth_failures import AuthFailures, BlockPolicy

POLICY = BlockPolicy(threshold=3, window_s=60, block_s=1, max_block_s=5)


def test_the_threshold_starts_a_block_that_doubles_up_to_the_maximum() -> None:
    failures = AuthFailures()
    blocks = [failures.failed("admin", "10.0.0.1", float(t), POLICY) for t in range(8)]
    assert blocks == [0, 0, 1, 2, 4, 5, 5, 5]
    assert failures.blocked_s("admin", "10.0.0.1", 7.5) == pytest.approx(4.5)
    assert failures.blocked_s("client", "10.0.0.1", 7.5) == 0  # each realm its own
    assert failures.blocked_s("admin", "10.0.0.2", 7.5) == 0  # each address its own


def test_an_address_quiet_for_a_window_is_forgotten() -> None:
    failures = AuthFailures()
    for t in range(3):
        failures.failed("client", "a", float(t), POLICY)
    assert failures.failed("client", "a", 200.0, POLICY) == 0  # counts from one again
    assert failures.blocked_s("client", "a", 200.0) == 0


def test_the_table_empties_once_everyone_is_forgotten() -> None:
    failures = AuthFailures()
    failures.failed("client", "a", 0.0, POLICY)
    for t in range(3):
        failures.failed("admin", "b", 10.0 + t, POLICY)  # blocked 1 s at t=12
    assert len(failures) == 2
    failures.blocked_s("client", "x", 61.0)  # a: quiet for the window
    assert len(failures) == 1
    failures.blocked_s("client", "x", 73.0)  # b: too
    assert not failures


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", None, [], "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),  # no proxy trusted: ignored
        ("10.0.0.5", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.1"),
        ("203.0.113.7", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.7"),  # not via the proxy
        ("10.0.0.5", "evil\\nline", ["10.0.0.0/8"], "10.0.0.5"),  # not an address
        (None, None, [], "unknown"),
    ],
)
def test_client_address(peer, forwarded, trusted, expected) -> None:
    assert client_address(peer, forwarded, trusted_networks(trusted)) == expected


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("unknown", False)],
)  # fmt: skip
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback
