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


def test_generated_credentials_are_kept_private_and_shown_once(data_dir):
    """Without COFFER_ROOT_* the first start generates root credentials, keeps them in
    identity.json and the root key in root.key, both mode 0600 (README), and prints
    them once; they sign requests; a restart keeps them and prints nothing."""
    import json
    import stat
    no_creds = {"COFFER_ROOT_ACCESS_KEY_ID": "", "COFFER_ROOT_SECRET_ACCESS_KEY": ""}
    s = Server(data_dir, env=no_creds, scale_out=False).start()
    try:
        stored = json.loads((data_dir / "identity.json").read_text())
        key_id, secret = stored["root_access_key_id"], stored["root_secret_access_key"]
        for name in ("identity.json", "root.key"):
            mode = stat.S_IMODE((data_dir / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
        printed = "\n".join(s.stdout_lines)
        assert key_id in printed and secret in printed
        s.client(access_key=key_id, secret_key=secret).list_buckets()
    finally:
        s.stop()
    s = Server(data_dir, env=no_creds, scale_out=False).start()
    try:
        assert secret not in "\n".join(s.stdout_lines + s.stderr_lines), "shown once"
        s.client(access_key=key_id, secret_key=secret).list_buckets()
    finally:
        s.stop()
