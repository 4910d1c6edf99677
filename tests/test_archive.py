"""Archive storage classes with boto3 and the aws CLI, on a server whose S3 "day" is one
second and whose archive tier is its own directory (--archive-dir): GLACIER and
DEEP_ARCHIVE objects (written so, or moved there by a lifecycle transition) live in the
archive directory, still encrypted; they answer GET and copies with 403 InvalidObjectState
until RestoreObject has run its tier's (shortened) course; `x-amz-restore` shows the
restore ongoing, then done with its expiry; the restored bytes are readable until the
restore expires. Other classes (GLACIER_IR, STANDARD_IA, ...) read directly.

Restore answers (202 first, 200 when extending a finished restore, 409
RestoreAlreadyInProgress while one runs) are AWS's documented ones.
"""

import tempfile
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import Server, after_passes

MARK = b"archived-plaintext-marker-"


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory(prefix="coffer-archive-") as d:
        d = Path(d)
        (d / "data").mkdir()
        s = Server(d / "data", extra_args=["--archive-dir", str(d / "cold")],
                   env={"COFFER_S3_DAY_SECONDS": "1"}).start()
        yield s, d / "data", d / "cold"
        s.stop()


@pytest.fixture
def srv(env):
    return env[0]


@pytest.fixture
def s3(srv):
    return srv.client("s3")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def files(root):
    return {p for p in (root / "blobs").rglob("*") if p.is_file()}


def holds(paths, needle):
    return any(needle in p.read_bytes() for p in paths)


def wait_for(what, check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_archived_objects_are_read_only_after_a_restore_that_runs_its_course(env, s3):
    srv, data, cold = env
    b = unique("cold")
    s3.create_bucket(Bucket=b)
    body = MARK + b"deep" * 1000
    before = files(cold)
    s3.put_object(Bucket=b, Key="deep", Body=body, StorageClass="DEEP_ARCHIVE")
    # The bytes went to the archive directory, encrypted (SSE-S3 by default).
    new = files(cold) - before
    assert new and not holds(new, MARK)
    h = s3.head_object(Bucket=b, Key="deep")
    assert h["StorageClass"] == "DEEP_ARCHIVE" and "Restore" not in h
    assert err(s3.get_object, Bucket=b, Key="deep") == (403, "InvalidObjectState")
    assert err(s3.copy_object, Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "deep"}) == (
        403, "InvalidObjectState")
    # Expedited retrieval does not exist for DEEP_ARCHIVE.
    assert err(s3.restore_object, Bucket=b, Key="deep",
               RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}})[0] == 400

    # Bulk from DEEP_ARCHIVE takes 48 hours: two one-second days here.
    r = s3.restore_object(Bucket=b, Key="deep", RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket=b, Key="deep")["Restore"] == 'ongoing-request="true"'
    assert err(s3.restore_object, Bucket=b, Key="deep", RestoreRequest={"Days": 2}) == (409, "RestoreAlreadyInProgress")
    assert err(s3.get_object, Bucket=b, Key="deep") == (403, "InvalidObjectState")
    restored = wait_for("the restore", lambda: 'ongoing-request="false"' in s3.head_object(Bucket=b, Key="deep").get("Restore", ""))
    assert restored
    h = s3.head_object(Bucket=b, Key="deep")
    assert h["Restore"].startswith('ongoing-request="false", expiry-date="') and h["StorageClass"] == "DEEP_ARCHIVE"
    assert s3.get_object(Bucket=b, Key="deep")["Body"].read() == body
    s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "deep"})
    assert s3.get_object(Bucket=b, Key="copy")["Body"].read() == body
    # Asking again extends a finished restore: 200.
    r = s3.restore_object(Bucket=b, Key="deep", RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    # It expires: archived again.
    wait_for("the restore to expire", lambda: "Restore" not in s3.head_object(Bucket=b, Key="deep"))
    assert err(s3.get_object, Bucket=b, Key="deep") == (403, "InvalidObjectState")
    # Only archived objects are restored.
    assert err(s3.restore_object, Bucket=b, Key="copy", RestoreRequest={"Days": 1}) == (403, "ObjectAlreadyInActiveTierError")
    # Other classes read directly.
    s3.put_object(Bucket=b, Key="ir", Body=b"instant", StorageClass="GLACIER_IR")
    assert s3.get_object(Bucket=b, Key="ir")["Body"].read() == b"instant"


def test_a_lifecycle_transition_moves_bytes_to_the_archive_then_restore_reads_them(env, s3):
    """Must show: lifecycle transition to GLACIER, then RestoreObject; the action is in
    `aws cloudtrail lookup-events`."""
    srv, data, cold = env
    b = unique("tier")
    s3.create_bucket(Bucket=b)
    big = MARK + b"x" * (200 * 1024)
    small = MARK + b"small"
    s3.put_object(Bucket=b, Key="old/big", Body=big)
    s3.put_object(Bucket=b, Key="old/small", Body=small)
    s3.put_object(Bucket=b, Key="new/big", Body=big)
    before = files(cold)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "to-glacier", "Status": "Enabled", "Filter": {"Prefix": "old/"},
         "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})
    wait_for("the transition", lambda: s3.head_object(Bucket=b, Key="old/big").get("StorageClass") == "GLACIER")
    moved = files(cold) - before
    assert moved and not holds(moved, MARK), "the archive holds the object, still encrypted"
    # Objects under 128 KiB stay (S3's default minimum), and so do keys no rule covers.
    after_passes(srv, "lifecycle")
    assert "StorageClass" not in s3.head_object(Bucket=b, Key="old/small")
    assert "StorageClass" not in s3.head_object(Bucket=b, Key="new/big")
    assert err(s3.get_object, Bucket=b, Key="old/big") == (403, "InvalidObjectState")
    events = srv.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                     f"AttributeKey=ResourceName,AttributeValue=arn:aws:s3:::{b}/old/big", expect_json=True)["Events"]
    writes = [e["EventName"] for e in events if e["EventName"] not in ("GetObject", "HeadObject")]
    assert writes == ["S3.TRANSITION.OBJECT", "PutObject"], "newest first"

    s3.restore_object(Bucket=b, Key="old/big", RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}})
    got = wait_for("the restore", lambda: _read(s3, b, "old/big"))
    assert got == big

    # With varies_by_storage_class, small objects may go to the archive classes too.
    s3.put_bucket_lifecycle_configuration(
        Bucket=b, TransitionDefaultMinimumObjectSize="varies_by_storage_class",
        LifecycleConfiguration={"Rules": [{"ID": "small-too", "Status": "Enabled", "Filter": {"Prefix": "old/"},
                                           "Transitions": [{"Days": 1, "StorageClass": "DEEP_ARCHIVE"}]}]})
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    wait_for("small to move", lambda: s3.head_object(Bucket=b, Key="old/small").get("StorageClass") == "DEEP_ARCHIVE")
    wait_for("big to go deeper", lambda: s3.head_object(Bucket=b, Key="old/big").get("StorageClass") == "DEEP_ARCHIVE")


def _read(s3, b, k):
    try:
        return s3.get_object(Bucket=b, Key=k)["Body"].read()
    except ClientError:
        return None


def test_multipart_uploads_in_an_archive_class_land_in_the_archive(env, s3):
    srv, data, cold = env
    b = unique("mpu-cold")
    s3.create_bucket(Bucket=b)
    before = files(cold)
    up = s3.create_multipart_upload(Bucket=b, Key="m", StorageClass="GLACIER")["UploadId"]
    p1 = s3.upload_part(Bucket=b, Key="m", UploadId=up, PartNumber=1, Body=MARK + b"1" * (5 * 1024 * 1024))
    p2 = s3.upload_part(Bucket=b, Key="m", UploadId=up, PartNumber=2, Body=MARK + b"2")
    assert len(files(cold) - before) == 2, "parts of an archive-class upload are written to the archive"
    s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
    assert s3.head_object(Bucket=b, Key="m")["StorageClass"] == "GLACIER"
    assert err(s3.get_object, Bucket=b, Key="m") == (403, "InvalidObjectState")
    srv.aws("s3api", "restore-object", "--bucket", b, "--key", "m", "--restore-request",
            '{"Days":1,"GlacierJobParameters":{"Tier":"Expedited"}}')
    got = wait_for("the restore", lambda: _read(s3, b, "m"))
    assert got == MARK + b"1" * (5 * 1024 * 1024) + MARK + b"2"
