"""A full disk: the data directory on a small tmpfs, filled to the last byte.

- A write that does not fit fails with S3's retryable `503 ServiceUnavailable` and leaves
  nothing behind: no object, nothing in staging.
- Reads keep working; their audit records wait in memory.
- The audit trail is never cut or silently dropped: a write to it that fails is cut back
  off the file (no torn line) and kept; while it cannot be written, every call but S3's
  GETs and HEADs is refused before it runs (S3 and IAM `503`, KMS
  `DependencyTimeoutException`), so nothing changes unrecorded.
- Once space returns, writes succeed again by themselves, the records kept meanwhile are
  written (the reads made while the disk was full are in the trail), and
  `coffer audit verify` finds the chain intact.

Needs root (to mount a tmpfs); skipped otherwise."""

import json
import os
import subprocess
import time

import pytest

from conftest import TIER, Server, coffer_bin

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
    pytest.mark.skipif(TIER == "s3", reason="fills the embedded store's disk"),
]

MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def status_code(call, **kw):
    try:
        call(**kw)
        return 200, None
    except Exception as e:
        r = getattr(e, "response", {})
        return r.get("ResponseMetadata", {}).get("HTTPStatusCode"), r.get("Error", {}).get("Code")


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_a_full_disk_refuses_writes_keeps_reads_and_loses_no_audit_record(small_disk):
    d = small_disk / "data"
    s = Server(d).start()
    try:
        s3, kms, iam = s.client(), s.client("kms"), s.client("iam")
        s3.create_bucket(Bucket="full")
        before = os.urandom(100_000)
        s3.put_object(Bucket="full", Key="before", Body=before)
        kid = kms.create_key()["KeyMetadata"]["KeyId"]

        # Objects until one does not fit.
        stored = []
        while True:
            status, code = status_code(s3.put_object, Bucket="full", Key=f"fill{len(stored)}",
                                       Body=os.urandom(4 * MiB))
            if status != 200:
                break
            stored.append(f"fill{len(stored)}")
        assert (status, code) == (503, "ServiceUnavailable"), (status, code)
        assert stored, "nothing fitted at all"
        assert list((d / "staging").iterdir()) == []
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket="full")["Contents"]}
        assert listed == {"before", *stored}

        # The last bytes, taken by another file: now nothing can be written at all.
        fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 20, 4096, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError:
                        break
        finally:
            os.close(fd)
        assert free_bytes(small_disk) == 0

        # Reads go on (and their records wait in memory).
        for _ in range(3):
            assert s3.get_object(Bucket="full", Key="before")["Body"].read() == before
        # Writes of every kind are refused with a retryable error, and change nothing.
        got = status_code(s3.put_object, Bucket="full", Key="small", Body=b"x")
        assert got[0] == 503, (got, s.stderr_lines[-5:])
        assert status_code(kms.create_key) == (503, "DependencyTimeoutException")
        assert status_code(kms.schedule_key_deletion, KeyId=kid, PendingWindowInDays=7)[0] == 503
        assert status_code(iam.create_user, UserName="during")[0] == 503
        assert {o["Key"] for o in s3.list_objects_v2(Bucket="full")["Contents"]} == listed

        # Space comes back: writes succeed again without a restart.
        os.remove(small_disk / "filler")
        for key in stored[:2]:
            s3.delete_object(Bucket="full", Key=key)
        deadline = time.monotonic() + 30
        while status_code(s3.put_object, Bucket="full", Key="after", Body=b"after")[0] != 200:
            assert time.monotonic() < deadline, "writes did not recover"
            time.sleep(0.1)
        assert kms.create_key()["KeyMetadata"]["KeyState"] == "Enabled"
        assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
        iam.create_user(UserName="after")
        assert s3.get_object(Bucket="full", Key="after")["Body"].read() == b"after"
    finally:
        s.stop()

    p = subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(d)], capture_output=True, text=True)
    assert p.returncode == 0 and "audit trail intact" in p.stdout, p.stdout + p.stderr
    s = Server(d).start()
    try:
        events = []
        kw = {"MaxResults": 50}
        while True:
            r = s.client("cloudtrail").lookup_events(**kw)
            events += r["Events"]
            if "NextToken" not in r:
                break
            kw["NextToken"] = r["NextToken"]
        names = [e["EventName"] for e in events]
        # The reads made while the disk was full (of `before`, read at no other time) were
        # recorded once it had room.
        reads = [e for e in events if e["EventName"] == "GetObject"
                 and json.loads(e["CloudTrailEvent"]).get("requestParameters", {}).get("key") == "before"]
        assert len(reads) == 3, names
        assert "CreateUser" in names
    finally:
        s.stop()
