"""The server starts, answers health checks, and stops cleanly."""

import urllib.request

from conftest import Server


def test_health_needs_no_credentials(server):
    with urllib.request.urlopen(server.endpoint + "/_coffer/health") as r:
        assert r.status == 200
        assert r.headers["x-amz-request-id"]


def test_sigterm_exits_zero(data_dir):
    s = Server(data_dir).start()
    assert s.stop() == 0
