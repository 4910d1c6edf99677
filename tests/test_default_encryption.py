"""Encryption by default (issue 13): every bucket applies SSE-S3 unless configured
otherwise, so no write path without SSE headers stores plaintext, and new buckets block
public access.

Each write path writes a body carrying a unique plaintext marker without SSE headers,
through the stock aws CLI, boto3 or s3cmd, and then every file of the data directory
(meta.sqlite and its -wal and -shm, blobs, staging, the audit trail) is searched for the
marker: it must be nowhere. The same search over a data directory written by the release
before this change (tests/fixtures/legacy-data-dir) first finds its plaintext markers (the
control), and after those objects are deleted, overwritten, copied onto themselves or
their upload aborted, finds them nowhere: freed pages are zeroed and the write-ahead log
is truncated, replaced blob files are removed.
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, REPO, SECRET_KEY, TIER, Server
from test_s3_boto3 import post_form
# The module's server (http, SSE-C allowed over http, for the copy-source SSE-C cases) and
# clients are test_sse's fixtures.
from test_sse import (  # noqa: F401
    KiB, MiB, SEG, bucket, fails, get, kms, marked, new_marker, plaintext_server, poll, s3, srv,
    sse_c, unique,
)

FIXTURE = REPO / "tests" / "fixtures" / "legacy-data-dir"
LEGACY = json.loads((REPO / "tests" / "fixtures" / "legacy.json").read_text())
SSE_S3_RULES = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]
ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}


def nowhere(server, *markers):
    """Asserts that nothing the server keeps at rest holds any of the markers."""
    for m in markers:
        assert server.stored_with(m) == [], f"{m!r} found in plaintext at rest"


def sse_s3(head):
    return head.get("ServerSideEncryption") == "AES256" and "SSEKMSKeyId" not in head


def body_with(label, size):
    m = new_marker(label)
    return m, marked(m, size) if size > 2 * len(m) else m


# --- a new bucket ------------------------------------------------------------------------


def test_a_new_bucket_defaults_to_sse_s3_and_blocks_public_access(srv, s3):
    b = unique("fresh")
    srv.aws("s3api", "create-bucket", "--bucket", b)
    got = srv.aws("s3api", "get-bucket-encryption", "--bucket", b, expect_json=True)
    assert got["ServerSideEncryptionConfiguration"]["Rules"] == SSE_S3_RULES, got
    pab = srv.aws("s3api", "get-public-access-block", "--bucket", b, expect_json=True)
    assert pab["PublicAccessBlockConfiguration"] == ALL_BLOCKED, pab
    assert s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"] == ALL_BLOCKED

    # The block is enforced: a public bucket policy is refused until the owner lifts it.
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]})
    assert fails(s3.put_bucket_policy, Bucket=b, Policy=public) == (403, "AccessDenied")
    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=public)

    # A header-less PUT is SSE-S3, and HEAD and GET say so.
    r = s3.put_object(Bucket=b, Key="k", Body=b"hello")
    assert r["ServerSideEncryption"] == "AES256", r
    assert sse_s3(s3.head_object(Bucket=b, Key="k"))
    g = s3.get_object(Bucket=b, Key="k")
    assert g["ServerSideEncryption"] == "AES256" and g["Body"].read() == b"hello"
    head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "k", expect_json=True)
    assert head["ServerSideEncryption"] == "AES256", head


# --- every write path without SSE headers --------------------------------------------------


@pytest.mark.parametrize("size", [100, 200 * KiB], ids=["inline", "blob"])
def test_put_object_without_headers_is_encrypted_at_rest(srv, s3, bucket, size):
    m, body = body_with("put", size)
    r = s3.put_object(Bucket=bucket, Key="p", Body=body)
    assert r["ServerSideEncryption"] == "AES256", r
    assert get(s3, bucket, "p") == body
    nowhere(srv, m)


def test_cli_cp_small_and_multipart_is_encrypted_at_rest(srv, bucket, tmp_path):
    m_small, small = body_with("cli-cp-small", 1000)
    m_big, big = body_with("cli-cp-big", 20 * MiB)  # the CLI uploads it in 8 MiB parts
    (tmp_path / "small").write_bytes(small)
    (tmp_path / "big").write_bytes(big)
    for name in ["small", "big"]:
        srv.aws("s3", "cp", str(tmp_path / name), f"s3://{bucket}/{name}", "--only-show-errors")
        head = srv.aws("s3api", "head-object", "--bucket", bucket, "--key", name, expect_json=True)
        assert head["ServerSideEncryption"] == "AES256", head
    assert head["ETag"].strip('"').endswith("-3"), head
    nowhere(srv, m_small, m_big)
    srv.aws("s3", "cp", f"s3://{bucket}/big", str(tmp_path / "big.out"), "--only-show-errors")
    assert (tmp_path / "big.out").read_bytes() == big


def test_multipart_upload_without_headers_is_encrypted_at_rest(srv, s3, bucket):
    m, body = body_with("mpu", 5 * MiB + 3 * KiB)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    assert up["ServerSideEncryption"] == "AES256", up
    parts = []
    for n, chunk in enumerate([body[: 5 * MiB], body[5 * MiB:]], start=1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=chunk)
        assert r["ServerSideEncryption"] == "AES256", r
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    # The parts are encrypted before the upload completes.
    nowhere(srv, m)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "AES256", done
    assert get(s3, bucket, "mp") == body
    nowhere(srv, m)


def test_browser_post_upload_is_encrypted_at_rest(srv, s3, bucket):
    m = new_marker("post")
    data = m + b" uploaded from a browser form " + m
    post = s3.generate_presigned_post(bucket, "form.txt", ExpiresIn=300)
    status, headers, body = post_form(post["url"], post["fields"], data)
    assert status == 204, body
    assert headers.get("x-amz-server-side-encryption") == "AES256", headers
    assert sse_s3(s3.head_object(Bucket=bucket, Key="form.txt"))
    assert get(s3, bucket, "form.txt") == data
    nowhere(srv, m)


def sources(s3, kms, bucket, label):
    """One object of each encryption, each with its own marker: {name: (marker, body,
    extra copy-source arguments)}."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    customer = os.urandom(32)
    out = {}
    for kind, extra_put, extra_copy in [
        ("kms", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}, {}),
        ("kms-bucket-key", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key, "BucketKeyEnabled": True}, {}),
        ("sse-s3", {"ServerSideEncryption": "AES256"}, {}),
        ("sse-c", sse_c(customer), {"CopySourceSSECustomerAlgorithm": "AES256",
                                   "CopySourceSSECustomerKey": customer}),
    ]:
        m, body = body_with(f"{label}-{kind}", 3 * SEG + 5)
        s3.put_object(Bucket=bucket, Key=f"src-{kind}", Body=body, **extra_put)
        out[kind] = (m, body, extra_copy)
    return out


def test_copy_object_without_headers_is_encrypted_at_rest(srv, s3, kms, bucket):
    """Copies of SSE-KMS, SSE-C and SSE-S3 objects, to another key, another bucket and onto
    themselves, get the destination's default; none is plaintext at rest."""
    other = unique("denc-dst")
    s3.create_bucket(Bucket=other)
    for kind, (m, body, extra) in sources(s3, kms, bucket, "copy").items():
        src = {"Bucket": bucket, "Key": f"src-{kind}"}
        for dst_bucket, dst_key in [(bucket, f"copy-{kind}"), (other, f"copy-{kind}")]:
            r = s3.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=src, **extra)
            assert r["ServerSideEncryption"] == "AES256", (kind, r)
            assert sse_s3(s3.head_object(Bucket=dst_bucket, Key=dst_key)), kind
            assert get(s3, dst_bucket, dst_key) == body, kind
        # Onto itself: legal with a change (here the metadata); the default applies.
        r = s3.copy_object(Bucket=bucket, Key=f"src-{kind}", CopySource=src, MetadataDirective="REPLACE",
                           Metadata={"copied": "in-place"}, **extra)
        assert r["ServerSideEncryption"] == "AES256", (kind, r)
        assert get(s3, bucket, f"src-{kind}") == body, kind
        nowhere(srv, m)


def test_cli_copy_object_of_an_sse_kms_object_is_encrypted_at_rest(srv, kms, bucket):
    """The issue's own reproduction: `aws s3api copy-object --copy-source b/kms-object`."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    m, body = body_with("cli-copy", 100)
    srv.client("s3").put_object(Bucket=bucket, Key="kms-object", Body=body, ServerSideEncryption="aws:kms",
                                SSEKMSKeyId=key)
    r = srv.aws("s3api", "copy-object", "--bucket", bucket, "--key", "copied", "--copy-source",
                f"{bucket}/kms-object", expect_json=True)
    assert r["ServerSideEncryption"] == "AES256", r
    nowhere(srv, m)


def test_upload_part_copy_without_headers_is_encrypted_at_rest(srv, s3, kms, bucket):
    """Per source kind, an upload without SSE headers of two copied parts: 5 MiB of an
    SSE-KMS object, then a range of the SSE-KMS, bucket-key, SSE-S3 or SSE-C source."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    m_big, big = body_with("upc-big", 5 * MiB)
    s3.put_object(Bucket=bucket, Key="big-kms", Body=big, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    for kind, (m, body, extra) in sources(s3, kms, bucket, "upc").items():
        dst = f"assembled-{kind}"
        up = s3.create_multipart_upload(Bucket=bucket, Key=dst)["UploadId"]
        first = s3.upload_part_copy(Bucket=bucket, Key=dst, UploadId=up, PartNumber=1,
                                    CopySource={"Bucket": bucket, "Key": "big-kms"})
        second = s3.upload_part_copy(Bucket=bucket, Key=dst, UploadId=up, PartNumber=2,
                                     CopySource={"Bucket": bucket, "Key": f"src-{kind}"},
                                     CopySourceRange=f"bytes=7-{len(body) - 1}", **extra)
        for r in (first, second):
            assert r["ServerSideEncryption"] == "AES256", (kind, r)
        nowhere(srv, m_big, m)
        parts = [{"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]} for n, r in [(1, first), (2, second)]]
        s3.complete_multipart_upload(Bucket=bucket, Key=dst, UploadId=up, MultipartUpload={"Parts": parts})
        assert sse_s3(s3.head_object(Bucket=bucket, Key=dst)), kind
        assert get(s3, bucket, dst) == big + body[7:], kind
        nowhere(srv, m_big, m)


def test_cli_mv_is_copy_and_delete_and_encrypted_at_rest(srv, kms, bucket, tmp_path):
    """`aws s3 mv` of an SSE-KMS object (a rename) keeps it encrypted at rest."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    m, body = body_with("cli-mv", 300 * KiB)
    (tmp_path / "f").write_bytes(body)
    srv.aws("s3", "cp", str(tmp_path / "f"), f"s3://{bucket}/old-name", "--sse", "aws:kms", "--sse-kms-key-id",
            key, "--only-show-errors")
    srv.aws("s3", "mv", f"s3://{bucket}/old-name", f"s3://{bucket}/new-name", "--only-show-errors")
    head = srv.aws("s3api", "head-object", "--bucket", bucket, "--key", "new-name", expect_json=True)
    assert head["ServerSideEncryption"] == "AES256", head
    assert srv.client("s3").list_objects_v2(Bucket=bucket, Prefix="old-name").get("KeyCount") == 0
    nowhere(srv, m)


def s3cmd(srv, tmp_path, *args, check=True):
    host = srv.endpoint.split("://", 1)[1]
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n"
        f"host_base = {host}\nhost_bucket = {host}\n"
        "use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
    )
    p = subprocess.run(["s3cmd", "-c", str(cfg), *args], capture_output=True, text=True)
    if not check:
        return p
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def test_s3cmd_mv_and_cp_of_sse_kms_objects_are_encrypted_at_rest(srv, s3, kms, bucket, tmp_path):
    """s3cmd's mv is a server-side copy without SSE headers and a delete."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    m, body = body_with("s3cmd", 100 * KiB)
    s3.put_object(Bucket=bucket, Key="kms-object", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    # s3cmd copies send the source's ACL unless told not to; a bucket with ACLs disabled
    # (every new bucket) refuses that with AccessControlListNotSupported, as AWS does
    # (s3tools/s3cmd#1304), so s3cmd users pass --acl-private.
    failed = s3cmd(srv, tmp_path, "cp", f"s3://{bucket}/kms-object", f"s3://{bucket}/acl-copy", check=False)
    assert failed.returncode != 0 and "AccessControlListNotSupported" in failed.stderr, failed
    s3cmd(srv, tmp_path, "mv", "--acl-private", f"s3://{bucket}/kms-object", f"s3://{bucket}/renamed")
    s3cmd(srv, tmp_path, "cp", "--acl-private", f"s3://{bucket}/renamed", f"s3://{bucket}/copied")
    m_put, put_body = body_with("s3cmd-put", 1000)
    (tmp_path / "up").write_bytes(put_body)
    s3cmd(srv, tmp_path, "put", str(tmp_path / "up"), f"s3://{bucket}/put")
    for k in ["renamed", "copied", "put"]:
        assert sse_s3(s3.head_object(Bucket=bucket, Key=k)), k
    assert fails(s3.head_object, Bucket=bucket, Key="kms-object")[0] == 404
    assert get(s3, bucket, "renamed") == body
    nowhere(srv, m, m_put)


# --- data written before this change ---------------------------------------------------------


@pytest.fixture
def legacy(tmp_path):
    if TIER == "s3":
        pytest.skip("an embedded data directory written by an earlier release")
    """A server on a copy of the fixture written by the release before default encryption."""
    d = tmp_path / "legacy"
    shutil.copytree(FIXTURE, d)
    s = Server(d).start()
    yield s
    s.stop()


def legacy_body(name):
    return base64.b64decode(LEGACY["objects"][name])


def test_plaintext_from_before_stays_readable_and_is_scrubbed_when_replaced(legacy, tmp_path):
    s3 = legacy.client("s3")
    markers = {k: v.encode() for k, v in LEGACY["markers"].items()}
    # Control: the walk finds the old plaintext where it was stored (inline rows in
    # meta.sqlite or its -wal, a blob file, an upload's part).
    for name in ["legacy/inline.txt", "legacy/keep.txt", "legacy/blob.bin", "part"]:
        assert legacy.stored_with(markers[name]), f"control: {name} not found"
    # Encrypted objects from before never were plaintext.
    nowhere(legacy, markers["legacy/s3.txt"], markers["legacy-kms/secret.txt"])

    # Everything from before reads back; plaintext objects still say so.
    for name in LEGACY["objects"]:
        bucket, key = name.split("/", 1)
        assert get(s3, bucket, key) == legacy_body(name), name
    assert "ServerSideEncryption" not in s3.head_object(Bucket="legacy", Key="inline.txt")
    assert s3.head_object(Bucket="legacy-kms", Key="secret.txt")["SSEKMSKeyId"] == LEGACY["kms_key_arn"]
    # The old bucket now defaults to SSE-S3 (as every AWS bucket did in 2023) and keeps
    # the public access settings it had (none): the block is for new buckets.
    assert s3.get_bucket_encryption(Bucket="legacy")["ServerSideEncryptionConfiguration"]["Rules"] == SSE_S3_RULES
    assert fails(s3.get_public_access_block, Bucket="legacy") == (404, "NoSuchPublicAccessBlockConfiguration")
    # The IAM user from before still authenticates (and is still denied: no policy).
    user = legacy.client("s3", access_key=LEGACY["user_access_key_id"], secret_key=LEGACY["user_secret_access_key"])
    assert fails(user.list_objects_v2, Bucket="legacy") == (403, "AccessDenied")

    # UpdateObjectEncryption does not take unencrypted sources (as on AWS); a copy onto
    # itself encrypts one, without any other change.
    status, code = fails(s3.update_object_encryption, Bucket="legacy", Key="keep.txt",
                         ObjectEncryption={"SSEKMS": {"KMSKeyArn": LEGACY["kms_key_arn"]}})
    assert (status, code) == (400, "InvalidRequest")
    r = s3.copy_object(Bucket="legacy", Key="keep.txt", CopySource={"Bucket": "legacy", "Key": "keep.txt"})
    assert r["ServerSideEncryption"] == "AES256", r
    assert sse_s3(s3.head_object(Bucket="legacy", Key="keep.txt"))
    assert get(s3, "legacy", "keep.txt") == legacy_body("legacy/keep.txt")
    # Once encrypted, the same copy changes nothing and is refused, as on AWS.
    assert fails(s3.copy_object, Bucket="legacy", Key="keep.txt",
                 CopySource={"Bucket": "legacy", "Key": "keep.txt"}) == (400, "InvalidRequest")

    # Delete one, overwrite one without headers, abort the pending upload.
    s3.delete_object(Bucket="legacy", Key="inline.txt")
    new = b"the replacement"
    assert s3.put_object(Bucket="legacy", Key="blob.bin", Body=new)["ServerSideEncryption"] == "AES256"
    s3.abort_multipart_upload(Bucket="legacy", Key="pending.bin", UploadId=LEGACY["upload_id"])

    gone = [markers[n] for n in ["legacy/inline.txt", "legacy/keep.txt", "legacy/blob.bin", "part"]]

    def scrubbed():
        return all(not legacy.stored_with(m) for m in gone)

    # The blob collector and the WAL scrub run in the background, within a second.
    assert poll(scrubbed, 20), {m: legacy.stored_with(m) for m in gone}
    assert get(s3, "legacy", "blob.bin") == new
    assert legacy.stop() == 0
    for m in gone:
        assert legacy.stored_with(m) == [], m


def test_opting_out_stores_plaintext_and_deleting_it_scrubs_it(tmp_path):
    """`--default-encryption none` (benchmarks and development only) stores header-less
    writes in plaintext, as before; a delete or overwrite still leaves none of it behind."""
    with plaintext_server(tmp_path / "plain") as plain:
        s3 = plain.client("s3")
        s3.create_bucket(Bucket="plain")
        m_inline, m_blob = new_marker("optout-inline"), new_marker("optout-blob")
        s3.put_object(Bucket="plain", Key="i", Body=m_inline)
        s3.put_object(Bucket="plain", Key="b", Body=marked(m_blob, 200 * KiB))
        assert "ServerSideEncryption" not in s3.head_object(Bucket="plain", Key="i")
        assert plain.stored_with(m_inline) and plain.stored_with(m_blob)
        s3.delete_object(Bucket="plain", Key="i")
        s3.put_object(Bucket="plain", Key="b", Body=b"x", ServerSideEncryption="AES256")
        assert poll(lambda: not plain.stored_with(m_inline) and not plain.stored_with(m_blob), 20)
