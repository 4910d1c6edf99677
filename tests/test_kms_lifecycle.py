"""The KMS over time and across restarts: automatic rotation and scheduled deletion with a
shortened KMS "day" (COFFER_KMS_DAY_SECONDS), persistence across SIGTERM and kill -9, the
root key check at startup, and no plaintext key material at rest.

Waiting for the background step is always a bounded poll, never a bare sleep.
"""

import base64
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import Server, coffer_bin


def error_code(call, *args, **kw):
    with pytest.raises(ClientError) as ei:
        call(*args, **kw)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return ei.value.response["Error"]["Code"]


def poll(check, deadline_s, every=0.2):
    """Calls `check` until it returns something truthy or the deadline passes."""
    end = time.monotonic() + deadline_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            return got
        time.sleep(every)


def files_under(d):
    return sorted(p for p in Path(d).rglob("*") if p.is_file())


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def data_files(d):
    """The data dir's files, without the root key and SQLite's transient -wal/-shm."""
    return {
        str(p.relative_to(d))
        for p in files_under(d)
        if not p.name.endswith(("-wal", "-shm")) and p.name != "root.key"
    }


# ---------------------------------------------------------------------------------------
# automatic rotation


def test_automatic_rotation_happens_after_the_period(data_dir):
    # 90 days of 0.05 s = 4.5 s.
    s = Server(data_dir, env={"COFFER_KMS_DAY_SECONDS": "0.05"}).start()
    try:
        kms = s.client("kms")
        m = kms.create_key()["KeyMetadata"]
        kid, original = m["KeyId"], m["CurrentKeyMaterialId"]
        old = kms.encrypt(KeyId=kid, Plaintext=b"before rotation")["CiphertextBlob"]
        kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=90)
        # A twin with rotation on but disabled: AWS does not rotate disabled keys.
        twin = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=twin, RotationPeriodInDays=90)
        kms.disable_key(KeyId=twin)
        status = kms.get_key_rotation_status(KeyId=kid)
        assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90
        # Nothing has rotated yet: the period has not elapsed.
        assert kms.list_key_rotations(KeyId=kid)["Rotations"] == []

        def automatic():
            rots = kms.list_key_rotations(KeyId=kid)["Rotations"]
            return [r for r in rots if r.get("RotationType") == "AUTOMATIC"]

        found = poll(automatic, 30)
        assert found, "no AUTOMATIC rotation within 30 s for a 4.5 s rotation period"
        assert found[0]["KeyMaterialId"] != original

        d_old = kms.decrypt(CiphertextBlob=old)
        assert d_old["Plaintext"] == b"before rotation"
        assert d_old["KeyMaterialId"] == original
        new = kms.encrypt(KeyId=kid, Plaintext=b"after rotation")["CiphertextBlob"]
        d_new = kms.decrypt(CiphertextBlob=new)
        assert d_new["Plaintext"] == b"after rotation"
        assert d_new["KeyMaterialId"] != original
        all_ids = [
            r["KeyMaterialId"]
            for r in kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
        ]
        assert all_ids[0] == original
        assert d_new["KeyMaterialId"] in all_ids[1:]
        assert kms.list_key_rotations(KeyId=twin)["Rotations"] == [], "a disabled key rotated"
        # The schedule moved on: the next rotation is in the future again.
        status = kms.get_key_rotation_status(KeyId=kid)
        assert status["KeyRotationEnabled"] is True
        assert status["NextRotationDate"].timestamp() > m["CreationDate"].timestamp() + 4.5
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------
# scheduled deletion


def test_key_is_deleted_when_the_pending_window_ends(data_dir):
    s = Server(data_dir, env={"COFFER_KMS_DAY_SECONDS": "1"}).start()
    try:
        kms = s.client("kms")
        a = kms.create_key(Description="A")["KeyMetadata"]
        b = kms.create_key(Description="B")["KeyMetadata"]
        blob_a = kms.encrypt(KeyId=a["KeyId"], Plaintext=b"for A")["CiphertextBlob"]
        blob_b = kms.encrypt(KeyId=b["KeyId"], Plaintext=b"for B")["CiphertextBlob"]
        kms.create_alias(AliasName="alias/doomed", TargetKeyId=a["KeyId"])

        scheduled = time.monotonic()
        r = kms.schedule_key_deletion(KeyId=a["KeyId"], PendingWindowInDays=7)
        assert r["PendingWindowInDays"] == 7
        m = kms.describe_key(KeyId=a["KeyId"])["KeyMetadata"]
        assert m["KeyState"] == "PendingDeletion" and m["Enabled"] is False

        def gone():
            try:
                kms.describe_key(KeyId=a["KeyId"])
                return False
            except ClientError as e:
                assert e.response["Error"]["Code"] == "NotFoundException", e.response
                return True

        assert poll(gone, 20), "key A still exists 20 s after a 7 s pending window"
        elapsed = time.monotonic() - scheduled
        assert elapsed >= 6.0, f"key deleted after {elapsed:.1f} s, before its 7-day (7 s) window"

        assert error_code(kms.decrypt, CiphertextBlob=blob_a) == "InvalidCiphertextException"
        assert error_code(kms.describe_key, KeyId="alias/doomed") == "NotFoundException"
        assert "alias/doomed" not in [x["AliasName"] for x in kms.list_aliases()["Aliases"]]
        assert a["KeyId"] not in [k["KeyId"] for k in kms.list_keys()["Keys"]]
        assert error_code(kms.cancel_key_deletion, KeyId=a["KeyId"]) == "NotFoundException"
        # The alias name is free again.
        kms.create_alias(AliasName="alias/doomed", TargetKeyId=b["KeyId"])

        assert kms.decrypt(CiphertextBlob=blob_b)["Plaintext"] == b"for B"
        assert kms.describe_key(KeyId=b["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    finally:
        s.stop()

    # The deletion is durable: after a restart key A is still gone.
    s = Server(data_dir, env={"COFFER_KMS_DAY_SECONDS": "1"}).start()
    try:
        kms = s.client("kms")
        assert error_code(kms.describe_key, KeyId=a["KeyId"]) == "NotFoundException"
        assert error_code(kms.decrypt, CiphertextBlob=blob_a) == "InvalidCiphertextException"
        assert kms.decrypt(CiphertextBlob=blob_b)["Plaintext"] == b"for B"
        assert kms.describe_key(KeyId="alias/doomed")["KeyMetadata"]["KeyId"] == b["KeyId"]
    finally:
        s.stop()


def test_cancelled_deletion_is_not_carried_out(data_dir):
    s = Server(data_dir, env={"COFFER_KMS_DAY_SECONDS": "0.2"}).start()
    try:
        kms = s.client("kms")
        victim = kms.create_key()["KeyMetadata"]["KeyId"]
        canary = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.schedule_key_deletion(KeyId=victim, PendingWindowInDays=7)
        kms.cancel_key_deletion(KeyId=victim)
        kms.schedule_key_deletion(KeyId=canary, PendingWindowInDays=7)

        def canary_gone():
            return canary not in [k["KeyId"] for k in kms.list_keys()["Keys"]]

        # The canary's window (1.4 s) has the same length: once it is gone, the cancelled
        # key's would have ended too.
        assert poll(canary_gone, 20)
        assert kms.describe_key(KeyId=victim)["KeyMetadata"]["KeyState"] == "Disabled"
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------
# persistence


def test_keys_and_their_settings_survive_a_restart(data_dir):
    s = Server(data_dir).start()
    try:
        kms = s.client("kms")
        main = kms.create_key(
            Description="main key", Tags=[{"TagKey": "team", "TagValue": "storage"}]
        )["KeyMetadata"]
        kid = main["KeyId"]
        account = main["AWSAccountId"]
        policy = (
            '{"Version":"2012-10-17","Id":"restart-policy","Statement":[{"Sid":"S","Effect":"Allow",'
            f'"Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}'
        )
        kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=policy)
        kms.create_alias(AliasName="alias/main", TargetKeyId=kid)
        kms.create_alias(AliasName="alias/moved", TargetKeyId=kid)
        blob_v0 = kms.encrypt(KeyId=kid, Plaintext=b"v0", EncryptionContext={"c": "1"})["CiphertextBlob"]
        kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=180)
        kms.rotate_key_on_demand(KeyId=kid)
        kms.rotate_key_on_demand(KeyId=kid)
        blob_v2 = kms.encrypt(KeyId="alias/main", Plaintext=b"v2")["CiphertextBlob"]
        status = kms.get_key_rotation_status(KeyId=kid)
        rotations = kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
        meta = kms.describe_key(KeyId=kid)["KeyMetadata"]

        disabled = kms.create_key(Description="disabled")["KeyMetadata"]["KeyId"]
        blob_disabled = kms.encrypt(KeyId=disabled, Plaintext=b"d")["CiphertextBlob"]
        kms.disable_key(KeyId=disabled)
        kms.update_alias(AliasName="alias/moved", TargetKeyId=disabled)

        pending = kms.create_key(Description="pending")["KeyMetadata"]["KeyId"]
        sched = kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=10)
    finally:
        assert s.stop() == 0

    s = Server(data_dir).start()
    try:
        kms = s.client("kms")
        after = kms.describe_key(KeyId=kid)["KeyMetadata"]
        for field in ("Arn", "Description", "KeyState", "CreationDate", "CurrentKeyMaterialId", "KeyUsage"):
            assert after[field] == meta[field], field
        assert kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"] == policy
        tags = kms.list_resource_tags(KeyId=kid)["Tags"]
        assert tags == [{"TagKey": "team", "TagValue": "storage"}]
        assert kms.describe_key(KeyId="alias/main")["KeyMetadata"]["KeyId"] == kid
        assert kms.describe_key(KeyId="alias/moved")["KeyMetadata"]["KeyId"] == disabled
        assert kms.get_key_rotation_status(KeyId=kid) | {"ResponseMetadata": None} == status | {
            "ResponseMetadata": None
        }
        assert (
            kms.list_key_rotations(KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"] == rotations
        )
        d0 = kms.decrypt(CiphertextBlob=blob_v0, EncryptionContext={"c": "1"})
        assert d0["Plaintext"] == b"v0" and d0["KeyMaterialId"] == rotations[0]["KeyMaterialId"]
        d2 = kms.decrypt(CiphertextBlob=blob_v2)
        assert d2["Plaintext"] == b"v2" and d2["KeyMaterialId"] == meta["CurrentKeyMaterialId"]
        # The on-demand count survives too: 23 more allowed, then the limit.
        for _ in range(23):
            kms.rotate_key_on_demand(KeyId=kid)
        assert error_code(kms.rotate_key_on_demand, KeyId=kid) == "LimitExceededException"

        dm = kms.describe_key(KeyId=disabled)["KeyMetadata"]
        assert (dm["KeyState"], dm["Enabled"]) == ("Disabled", False)
        assert error_code(kms.decrypt, CiphertextBlob=blob_disabled) == "DisabledException"
        kms.enable_key(KeyId=disabled)
        assert kms.decrypt(CiphertextBlob=blob_disabled)["Plaintext"] == b"d"

        pm = kms.describe_key(KeyId=pending)["KeyMetadata"]
        assert pm["KeyState"] == "PendingDeletion"
        assert pm["DeletionDate"] == sched["DeletionDate"]
        assert pm["PendingDeletionWindowInDays"] == 10
        kms.cancel_key_deletion(KeyId=pending)
        assert kms.describe_key(KeyId=pending)["KeyMetadata"]["KeyState"] == "Disabled"

        assert {k["KeyId"] for k in kms.list_keys()["Keys"]} == {kid, disabled, pending}
    finally:
        s.stop()


def test_key_last_usage_survives_a_clean_restart(data_dir):
    """GetKeyLastUsage after SIGTERM + restart still reports the last Encrypt."""
    s = Server(data_dir).start()
    try:
        kms = s.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=kid, Plaintext=b"x")
        before = kms.get_key_last_usage(KeyId=kid)["KeyLastUsage"]
        assert before["Operation"] == "Encrypt"
    finally:
        assert s.stop() == 0
    s = Server(data_dir).start()
    try:
        after = s.client("kms").get_key_last_usage(KeyId=kid)
        assert "KeyLastUsage" in after, "the last use recorded before SIGTERM was lost"
        assert after["KeyLastUsage"]["Operation"] == "Encrypt"
        assert after["KeyLastUsage"]["Timestamp"] == before["Timestamp"]
    finally:
        s.stop()


def test_key_and_ciphertext_survive_kill_9(data_dir):
    s = Server(data_dir).start()
    kms = s.client("kms")
    m = kms.create_key(Description="crash")["KeyMetadata"]
    blob = kms.encrypt(KeyId=m["KeyId"], Plaintext=b"durable")["CiphertextBlob"]
    kms.create_alias(AliasName="alias/crash", TargetKeyId=m["KeyId"])
    kms.rotate_key_on_demand(KeyId=m["KeyId"])
    blob2 = kms.encrypt(KeyId=m["KeyId"], Plaintext=b"durable 2")["CiphertextBlob"]
    s.kill9()
    assert s.proc.returncode == -signal.SIGKILL

    s = Server(data_dir).start()
    try:
        kms = s.client("kms")
        assert kms.describe_key(KeyId=m["KeyId"])["KeyMetadata"]["Description"] == "crash"
        assert kms.describe_key(KeyId="alias/crash")["KeyMetadata"]["KeyId"] == m["KeyId"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"durable"
        assert kms.decrypt(CiphertextBlob=blob2)["Plaintext"] == b"durable 2"
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------
# the root key


def run_serve(data_dir, *args, env=None, timeout=30):
    """Runs `coffer serve` expecting it to refuse to start; returns the CompletedProcess.
    If it starts anyway, it is stopped and the test fails."""
    e = dict(os.environ)
    e.update(
        {
            "COFFER_ROOT_ACCESS_KEY_ID": "AKIACOFFERTESTKEY001",
            "COFFER_ROOT_SECRET_ACCESS_KEY": "coffer/test/secret/key/0123456789abcdefgh",
            "COFFER_LOG": "warn",
        }
    )
    e.update(env or {})
    proc = subprocess.Popen(
        [coffer_bin(), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=e,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate()
        pytest.fail(f"coffer serve kept running with the wrong root key:\n{out}\n{err}")
    return proc.returncode, out, err


def test_wrong_root_key_file_is_refused_and_changes_nothing(data_dir, tmp_path):
    key_a, key_b = tmp_path / "a.key", tmp_path / "b.key"
    key_b.write_bytes(os.urandom(32))
    s = Server(data_dir, ["--root-key-file", str(key_a)]).start()
    try:
        kms = s.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=kid, Plaintext=b"guarded")["CiphertextBlob"]
    finally:
        assert s.stop() == 0
    assert key_a.stat().st_size == 32, "the root key file was not created with 32 bytes"
    assert key_a.read_bytes() != key_b.read_bytes()

    before_files = data_files(data_dir)
    before_hash = {f: sha256(data_dir / f) for f in before_files}
    key_a_bytes, key_b_bytes = key_a.read_bytes(), key_b.read_bytes()

    code, out, err = run_serve(data_dir, "--root-key-file", str(key_b))
    assert code != 0
    assert "root key" in err.lower(), err
    assert "listening on" not in out

    assert data_files(data_dir) == before_files
    assert {f: sha256(data_dir / f) for f in before_files} == before_hash
    assert key_a.read_bytes() == key_a_bytes and key_b.read_bytes() == key_b_bytes

    s = Server(data_dir, ["--root-key-file", str(key_a)]).start()
    try:
        kms = s.client("kms")
        assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"guarded"
    finally:
        s.stop()


def test_default_root_key_file_missing_from_an_existing_data_dir_is_refused(data_dir):
    """Losing DATA_DIR/root.key must not silently create a new one and start."""
    s = Server(data_dir).start()
    try:
        s.client("kms").create_key()
    finally:
        s.stop()
    root = data_dir / "root.key"
    saved = root.read_bytes()
    root.unlink()
    code, _, err = run_serve(data_dir)
    assert code != 0
    assert "root key" in err.lower(), err
    # Put the real key back: everything works again.
    if root.exists():
        root.unlink()
    root.write_bytes(saved)
    s = Server(data_dir).start()
    try:
        assert len(s.client("kms").list_keys()["Keys"]) == 1
    finally:
        s.stop()


def test_root_key_file_given_as_a_bare_relative_name_is_created(data_dir, tmp_path, monkeypatch):
    """`--root-key-file root.key` relative to the working directory, first start."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    try:
        s = Server(data_dir, ["--root-key-file", "my-root.key"]).start()
    except RuntimeError as e:
        pytest.fail(f"first start with a relative root key file failed: {e}")
    try:
        kid = s.client("kms").create_key()["KeyMetadata"]["KeyId"]
    finally:
        s.stop()
    assert (cwd / "my-root.key").stat().st_size == 32
    s = Server(data_dir, ["--root-key-file", "my-root.key"]).start()
    try:
        assert s.client("kms").describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    finally:
        s.stop()


def test_root_key_from_environment(data_dir):
    good = base64.b64encode(os.urandom(32)).decode()
    bad = base64.b64encode(os.urandom(32)).decode()
    s = Server(data_dir, env={"COFFER_ROOT_KEY": good}).start()
    try:
        kms = s.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=kid, Plaintext=b"env key")["CiphertextBlob"]
    finally:
        assert s.stop() == 0

    s = Server(data_dir, env={"COFFER_ROOT_KEY": good}).start()
    try:
        assert s.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"env key"
    finally:
        assert s.stop() == 0

    before = {f: sha256(data_dir / f) for f in data_files(data_dir)}
    code, out, err = run_serve(data_dir, env={"COFFER_ROOT_KEY": bad})
    assert code != 0
    assert "root key" in err.lower(), err
    assert {f: sha256(data_dir / f) for f in data_files(data_dir)} == before

    code, _, err = run_serve(data_dir, env={"COFFER_ROOT_KEY": "not base64!"})
    assert code != 0
    assert "root_key" in err.lower() or "root key" in err.lower(), err


# ---------------------------------------------------------------------------------------
# nothing secret at rest


def test_no_plaintext_or_data_key_is_stored_in_the_data_dir(data_dir):
    s = Server(data_dir).start()
    secrets = []
    try:
        kms = s.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        for kw in ({"KeySpec": "AES_256"}, {"NumberOfBytes": 64}):
            secrets.append(kms.generate_data_key(KeyId=kid, **kw)["Plaintext"])
        for _ in range(3):
            p = os.urandom(48)
            kms.encrypt(KeyId=kid, Plaintext=p, EncryptionContext={"k": "v"})
            secrets.append(p)
        blob = kms.encrypt(KeyId=kid, Plaintext=secrets[-1])["CiphertextBlob"]
        kms.decrypt(CiphertextBlob=blob)
        kms.rotate_key_on_demand(KeyId=kid)
        secrets.append(kms.generate_data_key(KeyId=kid, KeySpec="AES_128")["Plaintext"])

        def scan():
            found = []
            for f in files_under(data_dir):
                content = f.read_bytes()
                for i, sec in enumerate(secrets):
                    for form in (sec, base64.b64encode(sec), sec.hex().encode()):
                        if form in content:
                            found.append((str(f.relative_to(data_dir)), i))
            return found

        assert scan() == [], "plaintext found at rest while running"
    finally:
        s.stop()
    assert scan() == [], "plaintext found at rest after shutdown"
