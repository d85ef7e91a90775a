"""The suite's servers get ports no client can take first (see tests/support/mosquitto.free_port)."""

from __future__ import annotations

import socket

from tests.support.mosquitto import ephemeral_range, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable():
    low, _ = ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path):
    conf = tmp_path / "ip_local_port_range"
    conf.write_text("40000\t50000\n")
    assert ephemeral_range(conf) == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)
