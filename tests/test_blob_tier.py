"""`coffer serve --blobs s3://BUCKET/PREFIX?endpoint=URL`: object bytes in another S3 store.

Server A is the S3 store (any S3-compatible store would do; here another Coffer); server B
keeps its metadata, keys and trail itself and its object bytes in A's bucket. Everything
written through B reads back through B, across a restart of B; A's bucket holds B's blobs
under the prefix, and none of them contains the plaintext of an encrypted object."""

import base64
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import ACCESS_KEY, SECRET_KEY, Server

# A distinctive 64-byte pattern: if any blob in the tier contains it, plaintext reached
# the tier.
MARK = hashlib.sha512(b"coffer blob tier plaintext marker").digest()


def body(n_marks: int) -> bytes:
    return MARK * n_marks


@pytest.fixture
def tier():
    with tempfile.TemporaryDirectory(prefix="coffer-tier-a-") as a_dir, \
            tempfile.TemporaryDirectory(prefix="coffer-tier-b-") as b_dir:
        a = Server(a_dir).start()
        try:
            a.client().create_bucket(Bucket="tier")
            url = f"s3://tier/nodes/b?endpoint={a.endpoint}"
            env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            b = Server(Path(b_dir), extra_args=["--blobs", url, "--allow-insecure-sse-c"], env=env).start()
            try:
                yield a, b, url, env, Path(b_dir)
            finally:
                b.stop()
        finally:
            a.stop()


def tier_blobs(a: Server) -> dict:
    """Every object in A's bucket, with its bytes."""
    s3 = a.client()
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tier"):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket="tier", Key=o["Key"])["Body"].read()
    return out


def test_objects_live_in_the_s3_tier_encrypted(tier):
    a, b, url, env, b_dir = tier
    s3 = b.client()
    s3.create_bucket(Bucket="data")
    key_id = b.client("kms").create_key()["KeyMetadata"]["KeyId"]
    sse_c = os.urandom(32)
    sse_c_args = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=base64.b64encode(sse_c).decode(),
                      SSECustomerKeyMD5=base64.b64encode(hashlib.md5(sse_c).digest()).decode())
    small, large = body(100), body(200_000)  # 6.4 KB, 12.8 MB
    s3.put_object(Bucket="data", Key="sse-s3", Body=small)
    s3.put_object(Bucket="data", Key="sse-kms", Body=small, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    s3.put_object(Bucket="data", Key="sse-c", Body=small, **sse_c_args)
    s3.put_object(Bucket="data", Key="large", Body=large)
    up = s3.create_multipart_upload(Bucket="data", Key="multipart", ServerSideEncryption="aws:kms",
                                    SSEKMSKeyId=key_id)["UploadId"]
    parts = [large[: 5 * 1024 * 1024], large[5 * 1024 * 1024:]]
    etags = [s3.upload_part(Bucket="data", Key="multipart", UploadId=up, PartNumber=n, Body=p)["ETag"]
             for n, p in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket="data", Key="multipart", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})

    def check_reads(client):
        assert client.get_object(Bucket="data", Key="sse-s3")["Body"].read() == small
        assert client.get_object(Bucket="data", Key="sse-kms")["Body"].read() == small
        assert client.get_object(Bucket="data", Key="sse-c", **sse_c_args)["Body"].read() == small
        assert client.get_object(Bucket="data", Key="large")["Body"].read() == large
        assert client.get_object(Bucket="data", Key="multipart")["Body"].read() == large
        ranged = client.get_object(Bucket="data", Key="large", Range="bytes=1000000-1000099")
        assert ranged["Body"].read() == large[1_000_000:1_000_100]

    check_reads(s3)

    blobs = tier_blobs(a)
    assert blobs, "B's object bytes are in A's bucket"
    assert all(k.startswith("nodes/b/blobs/") for k in blobs), sorted(blobs)
    assert sum(len(v) for v in blobs.values()) >= len(large) * 2, "both large objects are there"
    leaked = [k for k, v in blobs.items() if MARK in v]
    assert not leaked, f"plaintext in the tier: {leaked}"
    # B's own data directory holds no object bytes.
    assert not [p for p in (b_dir / "blobs").rglob("*") if p.is_file()]

    # After a restart, B finds everything again in the tier.
    b.stop()
    b2 = Server(b_dir, extra_args=["--blobs", url, "--allow-insecure-sse-c"], env=env).start()
    try:
        check_reads(b2.client())
        # A deleted object's bytes leave the tier once collected.
        before = set(tier_blobs(a))
        b2.client().delete_object(Bucket="data", Key="large")
        with pytest.raises(ClientError):
            b2.client().get_object(Bucket="data", Key="large")
        for _ in range(100):
            after = set(tier_blobs(a))
            if len(after) < len(before):
                break
            time.sleep(0.1)
        assert after < before, "the deleted object's blob is gone from the tier"
        check = b2.client()
        assert check.get_object(Bucket="data", Key="multipart")["Body"].read() == large
    finally:
        b2.stop()


def test_a_bad_blob_store_stops_the_start_with_a_clear_error(tmp_path):
    creds = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    for url, env, says in [
        ("s3://", creds, "names no bucket"),
        ("s3://b?colour=blue", creds, "unknown or empty parameter"),
        ("s3://b?endpoint=http://127.0.0.1:1", {}, "AWS_ACCESS_KEY_ID"),
        # Nothing listens on port 1: the start fails rather than serving without its data.
        ("s3://b?endpoint=http://127.0.0.1:1", creds, "blob store"),
    ]:
        s = Server(tmp_path / uuid.uuid4().hex, extra_args=["--blobs", url])
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            s.env.pop(k, None)
        s.env.update(env)
        with pytest.raises(RuntimeError) as e:
            s.start(timeout=60)
        assert s.proc.returncode not in (None, 0)
        for _ in range(50):
            said = str(e.value) + "\n".join(s.stderr_lines)
            if says in said:
                break
            time.sleep(0.1)
        assert says in said, (url, said)
