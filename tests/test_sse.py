"""Server-side encryption with boto3 and the stock aws CLI: bucket default encryption,
SSE-KMS (named keys, the AWS-managed alias/aws/s3, bucket keys, encryption context),
SSE-S3, SSE-C (over HTTPS, and over http with --allow-insecure-sse-c), ranges across the
64 KiB segments and multipart part boundaries, the KMS key's lifecycle (disable,
rotation, scheduled deletion) as seen by reads, CopyObject re-encryption, tampering with
stored bytes, and the error cases.

"Nothing in plaintext at rest" is checked by walking everything the server keeps at rest
(`Server.at_rest`: the data dir's blobs, meta.sqlite and its -wal; for a scale-out node,
the S3 blob tier's objects and the PostgreSQL tables) for a marker taken from the
plaintext; a control object stored without encryption shows the same walk does find a
marker when it is there.
"""

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import REGION, TIER, Server, tls_server

KiB = 1024
MiB = 1024 * KiB
SEG = 64 * KiB  # plaintext bytes per encrypted segment
HEADER = 20  # "CFX1" + 16-byte salt before each extent's first segment
TAG = 16


def unique(prefix):
    unique.n = getattr(unique, "n", 0) + 1
    return f"{prefix}-{os.getpid()}-{unique.n}"


def new_marker(label):
    """A plaintext marker that occurs nowhere else (not in key names, not in other tests)."""
    return f"<<{label}:{uuid.uuid4().hex}>>".encode()


def marked(marker, size):
    """`size` bytes: the marker at the start of every 64 KiB, random bytes between."""
    out = bytearray()
    while len(out) < size:
        out += marker + os.urandom(SEG - len(marker))
    return bytes(out[:size])


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def fails(call, *args, **kw):
    """Calls an S3/KMS operation that must fail; returns (HTTP status, error code)."""
    with pytest.raises(ClientError) as ei:
        call(*args, **kw)
    r = ei.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def poll(check, deadline_s, every=0.2):
    end = time.monotonic() + deadline_s
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(every)


def get(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def cli_error(p):
    """The error text of a failed aws CLI call."""
    assert p.returncode != 0, (p.stdout, p.stderr)
    return p.stderr


def sse_c(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_source_sse_c(key):
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def kms_error(s3, bucket, key, **kw):
    status, code = fails(s3.get_object, Bucket=bucket, Key=key, **kw)
    assert status == 400, (status, code)
    return code


# --- servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv():
    """The shared server of this module: http, SSE-C allowed over http."""
    with tempfile.TemporaryDirectory(prefix="coffer-sse-") as d:
        s = Server(d, extra_args=["--allow-insecure-sse-c"]).start()
        yield s
        s.stop()


@pytest.fixture
def s3(srv):
    return srv.client("s3")


@pytest.fixture
def kms(srv):
    return srv.client("kms")


@pytest.fixture
def bucket(s3):
    name = unique("sse")
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def fresh(tmp_path):
    """A server of its own (default flags), for state that must start empty."""
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    yield s
    s.stop()


@contextlib.contextmanager
def plaintext_server(data_dir):
    """A server with the operator's opt-out `--default-encryption none`: the one way to
    store new objects in plaintext (controls for the at-rest walks, plaintext sources)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    s = Server(data_dir, extra_args=["--default-encryption", "none"]).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def tls_srv():
    """HTTPS with a self-signed certificate and *without* --allow-insecure-sse-c."""
    with tls_server("coffer-sse-tls-") as s:
        yield s


# --- 1. bucket default encryption with the CLI, and nothing in plaintext at rest --------


def encryption_json(kms_master_key_id=None, bucket_key=None):
    default = {"SSEAlgorithm": "aws:kms"}
    if kms_master_key_id is not None:
        default["KMSMasterKeyID"] = kms_master_key_id
    rule = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return json.dumps({"Rules": [rule]})


def test_cli_bucket_encryption_forms_and_encrypted_cp_at_rest(srv, kms, tmp_path):
    m = kms.create_key(Description="bucket default")["KeyMetadata"]
    kid, arn, account = m["KeyId"], m["Arn"], m["AWSAccountId"]
    alias = "alias/" + unique("bucket-default")
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    alias_arn = f"arn:aws:kms:{REGION}:{account}:{alias}"
    assert arn == f"arn:aws:kms:{REGION}:{account}:key/{kid}"

    b = unique("cli-enc")
    srv.aws("s3", "mb", f"s3://{b}")
    probe = tmp_path / "probe.txt"
    probe.write_bytes(b"probe\n")

    for form in (arn, kid, alias, alias_arn):
        # Exactly the command, with the key given as ARN, id, alias, alias ARN.
        srv.aws(
            "s3api", "put-bucket-encryption", "--bucket", b,
            "--server-side-encryption-configuration",
            '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"%s"}}]}' % form,
        )
        got = srv.aws("s3api", "get-bucket-encryption", "--bucket", b, expect_json=True)
        rules = got["ServerSideEncryptionConfiguration"]["Rules"]
        assert len(rules) == 1, got
        default = rules[0]["ApplyServerSideEncryptionByDefault"]
        assert default["SSEAlgorithm"] == "aws:kms", got
        assert default["KMSMasterKeyID"] == form, got
        # Whatever the form, objects name the key by its ARN.
        srv.aws("s3", "cp", str(probe), f"s3://{b}/probe", "--only-show-errors")
        head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "probe", expect_json=True)
        assert head["ServerSideEncryption"] == "aws:kms", (form, head)
        assert head["SSEKMSKeyId"] == arn, (form, head)

    srv.aws("s3api", "delete-bucket-encryption", "--bucket", b)
    got = srv.aws("s3api", "get-bucket-encryption", "--bucket", b, expect_json=True)
    assert got["ServerSideEncryptionConfiguration"]["Rules"] == [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}
    ], got
    # Back on the SSE-S3 default, a plain upload is encrypted with SSE-S3.
    srv.aws("s3", "cp", str(probe), f"s3://{b}/plain-probe", "--only-show-errors")
    head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "plain-probe", expect_json=True)
    assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head, head

    srv.aws(
        "s3api", "put-bucket-encryption", "--bucket", b,
        "--server-side-encryption-configuration",
        '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"%s"}}]}' % arn,
    )

    marker = new_marker("cli-small")
    big_marker = new_marker("cli-big")
    small = tmp_path / "small.txt"
    small.write_bytes(marker + b" a small secret\n" + marker)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(marked(big_marker, MiB))
    assert big.stat().st_size == 64 * MiB

    srv.aws("s3", "cp", str(small), f"s3://{b}/docs/small.txt", "--only-show-errors")
    srv.aws("s3", "cp", str(big), f"s3://{b}/docs/big.bin", "--only-show-errors", "--no-progress")

    for key, src in [("docs/small.txt", small), ("docs/big.bin", big)]:
        head = srv.aws("s3api", "head-object", "--bucket", b, "--key", key, expect_json=True)
        assert head["ServerSideEncryption"] == "aws:kms", head
        assert head["SSEKMSKeyId"] == arn, head
        assert head["ContentLength"] == src.stat().st_size
    big_head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "docs/big.bin", expect_json=True)
    assert big_head["ETag"].strip('"').endswith("-8"), big_head  # 8 parts of 8 MiB

    # Control: the same walk finds a marker where it is stored in plaintext: in user
    # metadata (meta.sqlite or its -wal; as on AWS, metadata is not encrypted) here, and
    # inline and in a blob on a server that opted out of default encryption.
    ctl_meta = new_marker("ctl-meta")
    srv.aws("s3", "cp", str(probe), f"s3://{b}/ctl-meta", "--metadata", f"note={ctl_meta.decode()}",
            "--only-show-errors")
    assert any(h.startswith(("meta.sqlite", "meta:")) for h in srv.stored_with(ctl_meta)), (
        "control: plaintext user metadata was not found in meta.sqlite or its -wal"
    )
    with plaintext_server(tmp_path / "plain") as plain:
        plain_b = unique("cli-plain")
        plain.aws("s3", "mb", f"s3://{plain_b}")
        ctl_small, ctl_big = new_marker("ctl-small"), new_marker("ctl-big")
        (tmp_path / "ctl-small").write_bytes(ctl_small + b" plain\n")
        (tmp_path / "ctl-big").write_bytes(marked(ctl_big, 300 * KiB))
        plain.aws("s3", "cp", str(tmp_path / "ctl-small"), f"s3://{plain_b}/s", "--only-show-errors")
        plain.aws("s3", "cp", str(tmp_path / "ctl-big"), f"s3://{plain_b}/b", "--only-show-errors")
        assert any(h.startswith(("meta.sqlite", "meta:")) for h in plain.stored_with(ctl_small)), (
            "control: an unencrypted inline body was not found in meta.sqlite or its -wal"
        )
        assert any(h.startswith(("blobs", "tier/")) for h in plain.stored_with(ctl_big)), "control blob not found"

    assert srv.stored_with(marker) == [], "small object's plaintext found at rest"
    assert srv.stored_with(big_marker) == [], "64 MiB object's plaintext found at rest"

    for key, src in [("docs/small.txt", small), ("docs/big.bin", big)]:
        out = tmp_path / (key.replace("/", "_") + ".out")
        srv.aws("s3", "cp", f"s3://{b}/{key}", str(out), "--only-show-errors", "--no-progress")
        assert sha256_file(out) == sha256_file(src), key


# --- 2. the AWS-managed key alias/aws/s3 ----------------------------------------------


def test_aws_managed_key_is_created_on_first_use(fresh, tmp_path):
    s = fresh
    p = s.aws("kms", "describe-key", "--key-id", "alias/aws/s3", check=False)
    assert "NotFoundException" in cli_error(p), p.stderr

    b = unique("managed")
    s.aws("s3", "mb", f"s3://{b}")
    s.aws(
        "s3api", "put-bucket-encryption", "--bucket", b,
        "--server-side-encryption-configuration",
        '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}',
    )
    got = s.aws("s3api", "get-bucket-encryption", "--bucket", b, expect_json=True)
    default = got["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms" and "KMSMasterKeyID" not in default, got

    f = tmp_path / "f.txt"
    data = b"under the AWS managed key\n" * 100
    f.write_bytes(data)
    s.aws("s3", "cp", str(f), f"s3://{b}/f.txt", "--only-show-errors")

    m = s.aws("kms", "describe-key", "--key-id", "alias/aws/s3", expect_json=True)["KeyMetadata"]
    assert m["KeyManager"] == "AWS", m
    assert m["KeyState"] == "Enabled", m
    head = s.aws("s3api", "head-object", "--bucket", b, "--key", "f.txt", expect_json=True)
    assert head["ServerSideEncryption"] == "aws:kms", head
    assert head["SSEKMSKeyId"] == m["Arn"], head

    # aws:kms without a key id on the request uses the same key; it is not made twice.
    s3 = s.client("s3")
    s3.put_object(Bucket=b, Key="explicit", Body=b"x", ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket=b, Key="explicit")["SSEKMSKeyId"] == m["Arn"]
    aliases = s.client("kms").list_aliases()["Aliases"]
    managed = [a for a in aliases if a["AliasName"] == "alias/aws/s3"]
    assert len(managed) == 1 and managed[0]["TargetKeyId"] == m["KeyId"], managed

    out = tmp_path / "out"
    s.aws("s3", "cp", f"s3://{b}/f.txt", str(out), "--only-show-errors")
    assert out.read_bytes() == data


# --- 3. ranges across segments and parts ----------------------------------------------


def check_range(s3, b, key, data, spec, start, end):
    """GET `Range: bytes=spec` returns data[start:end+1] with its Content-Range."""
    r = s3.get_object(Bucket=b, Key=key, Range="bytes=" + spec)
    body = r["Body"].read()
    assert body == data[start : end + 1], (spec, len(body))
    assert r["ContentRange"] == f"bytes {start}-{end}/{len(data)}", (spec, r["ContentRange"])
    assert r["ContentLength"] == end - start + 1, spec


def test_multipart_sse_kms_ranges_cross_segments_and_parts(s3, kms, bucket):
    m = kms.create_key()["KeyMetadata"]
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(100_000)
    data = p1 + p2 + p3
    n = len(data)
    up = s3.create_multipart_upload(
        Bucket=bucket, Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId=m["KeyId"]
    )
    assert up["ServerSideEncryption"] == "aws:kms" and up["SSEKMSKeyId"] == m["Arn"], up
    parts = []
    for i, body in enumerate([p1, p2, p3], start=1):
        r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=body)
        assert r["ServerSideEncryption"] == "aws:kms", r
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert done["ServerSideEncryption"] == "aws:kms" and done["SSEKMSKeyId"] == m["Arn"], done
    head = s3.head_object(Bucket=bucket, Key="mp")
    assert head["ContentLength"] == n
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == m["Arn"], head

    assert sha256(get(s3, bucket, "mp")) == sha256(data)
    part = 5 * MiB  # 5242880 = 80 segments: a part boundary is a segment boundary too
    cases = [
        # part 1 / part 2
        (f"{part - 10}-{part + 9}", part - 10, part + 9),
        (f"{part - 1}-{part}", part - 1, part),
        # part 2 / part 3
        (f"{2 * part - 30}-{2 * part + 30}", 2 * part - 30, 2 * part + 30),
        # segment boundaries inside part 1 and inside part 2
        (f"{SEG - 6}-{SEG + 9}", SEG - 6, SEG + 9),
        (f"{2 * SEG - 1}-{2 * SEG + 1}", 2 * SEG - 1, 2 * SEG + 1),
        (f"{part + 3 * SEG - 5}-{part + 5 * SEG + 5}", part + 3 * SEG - 5, part + 5 * SEG + 5),
        # inside part 3, across its first segment boundary
        (f"{2 * part + SEG - 2}-{2 * part + SEG + 2}", 2 * part + SEG - 2, 2 * part + SEG + 2),
        # many segments, all three parts
        (f"100000-{n - 5000}", 100000, n - 5000),
        # single bytes
        ("0-0", 0, 0),
        (f"{SEG - 1}-{SEG - 1}", SEG - 1, SEG - 1),
        (f"{SEG}-{SEG}", SEG, SEG),
        (f"{part}-{part}", part, part),
        (f"{n - 1}-{n - 1}", n - 1, n - 1),
        # suffixes: inside part 3, across part 2/3, the whole object, longer than it
        ("-100", n - 100, n - 1),
        ("-150000", n - 150000, n - 1),
        (f"-{n}", 0, n - 1),
        (f"-{n + 10}", 0, n - 1),
        # whole and open-ended
        (f"0-{n - 1}", 0, n - 1),
        ("0-", 0, n - 1),
        (f"0-{n + 1000}", 0, n - 1),
        (f"{2 * part - 1}-", 2 * part - 1, n - 1),
    ]
    for spec, start, end in cases:
        check_range(s3, bucket, "mp", data, spec, start, end)

    status, code = fails(s3.get_object, Bucket=bucket, Key="mp", Range=f"bytes={n}-")
    assert (status, code) == (416, "InvalidRange")

    bounds = [(0, part), (part, 2 * part), (2 * part, n)]
    for number, (lo, hi) in enumerate(bounds, start=1):
        r = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)
        assert r["Body"].read() == data[lo:hi], number
        assert r["ContentRange"] == f"bytes {lo}-{hi - 1}/{n}", r["ContentRange"]
        assert r["PartsCount"] == 3, r.get("PartsCount")
        assert r["ServerSideEncryption"] == "aws:kms"


def test_single_part_sse_kms_ranges_and_edge_sizes(s3, kms, bucket):
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    n = 4 * SEG + 12345
    data = os.urandom(n)
    s3.put_object(Bucket=bucket, Key="one", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    for spec, start, end in [
        (f"{SEG - 1}-{SEG}", SEG - 1, SEG),
        (f"{3 * SEG - 1}-{3 * SEG + 2}", 3 * SEG - 1, 3 * SEG + 2),
        (f"{SEG}-{2 * SEG - 1}", SEG, 2 * SEG - 1),  # exactly one segment
        (f"{4 * SEG - 3}-{n - 1}", 4 * SEG - 3, n - 1),  # into the short last segment
        (f"10-{n - 10}", 10, n - 10),
        ("-1", n - 1, n - 1),
        (f"-{n - SEG + 1}", SEG - 1, n - 1),
    ]:
        check_range(s3, bucket, "one", data, spec, start, end)

    # Sizes around the segment and the inline (64 KiB) limits, and the empty object.
    for size in [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG]:
        body = os.urandom(size)
        key = f"size-{size}"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == size and head["ServerSideEncryption"] == "aws:kms"
        assert get(s3, bucket, key) == body, size
        if size:
            check_range(s3, bucket, key, body, "-1", size - 1, size - 1)


# --- 4. the key's lifecycle as seen by reads --------------------------------------------


def test_disabled_key_stops_gets_but_not_heads(s3, kms, bucket):
    a = kms.create_key(Description="A")["KeyMetadata"]
    b = kms.create_key(Description="B")["KeyMetadata"]
    small, large = os.urandom(1000), os.urandom(3 * SEG + 7)
    objs = {
        "a-small": small,
        "a-large": large,
    }
    for key, body in objs.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])
    s3.put_object(
        Bucket=bucket, Key="a-bucket-key", Body=small, ServerSideEncryption="aws:kms",
        SSEKMSKeyId=a["KeyId"], BucketKeyEnabled=True,
    )
    objs["a-bucket-key"] = small
    s3.put_object(Bucket=bucket, Key="b-obj", Body=large, ServerSideEncryption="aws:kms", SSEKMSKeyId=b["KeyId"])
    # Read once, so that any cached (bucket) key is warm.
    for key, body in objs.items():
        assert get(s3, bucket, key) == body

    kms.disable_key(KeyId=a["KeyId"])
    for key in objs:
        assert kms_error(s3, bucket, key) == "KMS.DisabledException", key
        assert kms_error(s3, bucket, key, Range="bytes=0-9") == "KMS.DisabledException", key
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["SSEKMSKeyId"] == a["Arn"] and head["ContentLength"] == len(objs[key])
    assert get(s3, bucket, "b-obj") == large
    # Writing under a disabled key fails too, and leaves no object.
    status, code = fails(
        s3.put_object, Bucket=bucket, Key="a-new", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"]
    )
    assert (status, code) == (400, "KMS.DisabledException")
    assert fails(s3.head_object, Bucket=bucket, Key="a-new")[0] == 404

    kms.enable_key(KeyId=a["KeyId"])
    for key, body in objs.items():
        assert get(s3, bucket, key) == body, key


def test_objects_written_before_and_after_rotation_read_back(s3, kms, bucket):
    m = kms.create_key()["KeyMetadata"]
    kid = m["KeyId"]
    before = {f"before-{i}": os.urandom(size) for i, size in enumerate([10, 2 * SEG + 1])}
    for key, body in before.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    s3.put_object(
        Bucket=bucket, Key="before-bk", Body=b"bucket key before", ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kid, BucketKeyEnabled=True,
    )
    before["before-bk"] = b"bucket key before"

    kms.rotate_key_on_demand(KeyId=kid)
    assert poll(lambda: kms.list_key_rotations(KeyId=kid)["Rotations"], 10), "no rotation listed"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] != m["CurrentKeyMaterialId"]

    after = {f"after-{i}": os.urandom(size) for i, size in enumerate([10, 2 * SEG + 1])}
    for key, body in after.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    s3.put_object(
        Bucket=bucket, Key="after-bk", Body=b"bucket key after", ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kid, BucketKeyEnabled=True,
    )
    after["after-bk"] = b"bucket key after"
    for key, body in {**before, **after}.items():
        assert get(s3, bucket, key) == body, key
        assert s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == m["Arn"]


def test_scheduled_deletion_makes_objects_unreadable(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d, env={"COFFER_KMS_DAY_SECONDS": "1"}).start()
    try:
        s3, kms = s.client("s3"), s.client("kms")
        bk = unique("doomed")
        s3.create_bucket(Bucket=bk)
        a = kms.create_key(Description="A")["KeyMetadata"]
        b = kms.create_key(Description="B")["KeyMetadata"]
        objs = {"a-small": os.urandom(100), "a-large": os.urandom(2 * SEG + 3)}
        for key, body in objs.items():
            s3.put_object(Bucket=bk, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])
        s3.put_object(
            Bucket=bk, Key="a-bk", Body=b"bucket key", ServerSideEncryption="aws:kms",
            SSEKMSKeyId=a["KeyId"], BucketKeyEnabled=True,
        )
        objs["a-bk"] = b"bucket key"
        b_body = os.urandom(2 * SEG + 3)
        s3.put_object(Bucket=bk, Key="b-obj", Body=b_body, ServerSideEncryption="aws:kms", SSEKMSKeyId=b["KeyId"])
        for key, body in objs.items():
            assert get(s3, bk, key) == body

        kms.schedule_key_deletion(KeyId=a["KeyId"], PendingWindowInDays=7)
        for key in objs:
            assert kms_error(s3, bk, key) == "KMS.KMSInvalidStateException", key
            assert s3.head_object(Bucket=bk, Key=key)["SSEKMSKeyId"] == a["Arn"]
        status, code = fails(
            s3.put_object, Bucket=bk, Key="a-new", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"]
        )
        assert (status, code) == (400, "KMS.KMSInvalidStateException")
        assert get(s3, bk, "b-obj") == b_body

        def gone():
            try:
                kms.describe_key(KeyId=a["KeyId"])
                return False
            except ClientError as e:
                assert e.response["Error"]["Code"] == "NotFoundException", e.response
                return True

        assert poll(gone, 25), "key A still exists 25 s after a 7 s pending window"
        for key in objs:
            assert kms_error(s3, bk, key) == "KMS.NotFoundException", key
        assert get(s3, bk, "b-obj") == b_body
        # The object's metadata is still there; only its bytes are lost.
        assert s3.head_object(Bucket=bk, Key="a-large")["ContentLength"] == len(objs["a-large"])
    finally:
        s.stop()


# --- 5. SSE-S3 ------------------------------------------------------------------------


def test_sse_s3_roundtrip_and_bucket_default(srv, s3, bucket):
    small_m, large_m = new_marker("s3-small"), new_marker("s3-large")
    small = small_m + b" sse-s3 " + small_m
    large = marked(large_m, 3 * SEG + 99)
    for key, body in [("s", small), ("l", large)]:
        r = s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
        assert r["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in r, r
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", head
        assert "SSEKMSKeyId" not in head and "BucketKeyEnabled" not in head, head
        g = s3.get_object(Bucket=bucket, Key=key)
        assert g["Body"].read() == body and g["ServerSideEncryption"] == "AES256"
    check_range(s3, bucket, "l", large, f"{SEG - 2}-{2 * SEG + 2}", SEG - 2, 2 * SEG + 2)
    assert srv.stored_with(small_m) == []
    assert srv.stored_with(large_m) == []

    b2 = unique("sse-s3-default")
    s3.create_bucket(Bucket=b2)
    s3.put_bucket_encryption(
        Bucket=b2,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    rule = s3.get_bucket_encryption(Bucket=b2)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}, rule
    dm = new_marker("s3-default")
    body = marked(dm, SEG + 500)
    r = s3.put_object(Bucket=b2, Key="no-headers", Body=body)
    assert r["ServerSideEncryption"] == "AES256", r
    assert s3.head_object(Bucket=b2, Key="no-headers")["ServerSideEncryption"] == "AES256"
    assert get(s3, b2, "no-headers") == body
    assert srv.stored_with(dm) == []
    # A request header beats the bucket default.
    kid = srv.client("kms").create_key()["KeyMetadata"]["KeyId"]
    s3.put_object(Bucket=b2, Key="explicit-kms", Body=b"k", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    assert s3.head_object(Bucket=b2, Key="explicit-kms")["ServerSideEncryption"] == "aws:kms"


# --- 6. SSE-C ---------------------------------------------------------------------------


def test_sse_c_roundtrip_wrong_and_missing_key(srv, s3, bucket):
    key, other = os.urandom(32), os.urandom(32)
    key_md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    m = new_marker("sse-c")
    bodies = {"small": m + b" customer " + m, "large": marked(m, 2 * SEG + 5)}
    for name, body in bodies.items():
        r = s3.put_object(Bucket=bucket, Key=name, Body=body, **sse_c(key))
        assert r["SSECustomerAlgorithm"] == "AES256" and r["SSECustomerKeyMD5"] == key_md5, r
        assert "ServerSideEncryption" not in r, r

        g = s3.get_object(Bucket=bucket, Key=name, **sse_c(key))
        assert g["Body"].read() == body
        assert g["SSECustomerAlgorithm"] == "AES256" and g["SSECustomerKeyMD5"] == key_md5

        assert fails(s3.get_object, Bucket=bucket, Key=name, **sse_c(other)) == (403, "AccessDenied")
        assert fails(s3.get_object, Bucket=bucket, Key=name) == (400, "InvalidRequest")

        h = s3.head_object(Bucket=bucket, Key=name, **sse_c(key))
        assert h["ContentLength"] == len(body) and h["SSECustomerKeyMD5"] == key_md5, h
        assert fails(s3.head_object, Bucket=bucket, Key=name)[0] == 400
        assert fails(s3.head_object, Bucket=bucket, Key=name, **sse_c(other))[0] == 403
    large = bodies["large"]
    r = s3.get_object(Bucket=bucket, Key="large", Range=f"bytes={SEG - 3}-{SEG + 3}", **sse_c(key))
    assert r["Body"].read() == large[SEG - 3 : SEG + 4]
    assert r["ContentRange"] == f"bytes {SEG - 3}-{SEG + 3}/{len(large)}"
    assert srv.stored_with(m) == []
    # The key itself is never stored.
    assert srv.stored_with(key) == []
    assert srv.stored_with(base64.b64encode(key)) == []


def test_sse_c_multipart_and_copy_to_sse_kms(s3, kms, bucket):
    key, other = os.urandom(32), os.urandom(32)
    p1, p2 = os.urandom(5 * MiB), os.urandom(SEG + 17)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpc", **sse_c(key))
    assert up["SSECustomerAlgorithm"] == "AES256", up
    uid = up["UploadId"]
    # Parts must carry the key.
    assert fails(s3.upload_part, Bucket=bucket, Key="mpc", UploadId=uid, PartNumber=1, Body=p1)[0] == 400
    assert fails(s3.upload_part, Bucket=bucket, Key="mpc", UploadId=uid, PartNumber=1, Body=p1, **sse_c(other))[0] in (400, 403)
    parts = []
    for i, body in enumerate([p1, p2], start=1):
        r = s3.upload_part(Bucket=bucket, Key="mpc", UploadId=uid, PartNumber=i, Body=body, **sse_c(key))
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mpc", UploadId=uid, MultipartUpload={"Parts": parts})
    data = p1 + p2
    assert get(s3, bucket, "mpc", **sse_c(key)) == data
    check = s3.get_object(Bucket=bucket, Key="mpc", Range=f"bytes={5 * MiB - 4}-{5 * MiB + 3}", **sse_c(key))
    assert check["Body"].read() == data[5 * MiB - 4 : 5 * MiB + 4]
    assert get(s3, bucket, "mpc", PartNumber=2, **sse_c(key)) == p2
    assert fails(s3.get_object, Bucket=bucket, Key="mpc", **sse_c(other)) == (403, "AccessDenied")
    assert fails(s3.get_object, Bucket=bucket, Key="mpc") == (400, "InvalidRequest")

    m = kms.create_key()["KeyMetadata"]
    src = {"Bucket": bucket, "Key": "mpc"}
    # Without the source key the copy cannot read the source.
    status, _ = fails(
        s3.copy_object, Bucket=bucket, Key="nokey", CopySource=src, ServerSideEncryption="aws:kms", SSEKMSKeyId=m["KeyId"]
    )
    assert status == 400
    assert fails(
        s3.copy_object, Bucket=bucket, Key="wrongkey", CopySource=src, ServerSideEncryption="aws:kms",
        SSEKMSKeyId=m["KeyId"], **copy_source_sse_c(other),
    )[0] == 403
    r = s3.copy_object(
        Bucket=bucket, Key="as-kms", CopySource=src, ServerSideEncryption="aws:kms", SSEKMSKeyId=m["KeyId"],
        **copy_source_sse_c(key),
    )
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == m["Arn"], r
    head = s3.head_object(Bucket=bucket, Key="as-kms")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == m["Arn"], head
    assert "SSECustomerAlgorithm" not in head, head
    assert get(s3, bucket, "as-kms") == data


def test_sse_c_over_http_without_the_flag_is_refused(fresh):
    s3 = fresh.client("s3")
    b = unique("ssec-http")
    s3.create_bucket(Bucket=b)
    key = os.urandom(32)
    assert fails(s3.put_object, Bucket=b, Key="k", Body=b"secret", **sse_c(key)) == (400, "InvalidRequest")
    assert fails(s3.head_object, Bucket=b, Key="k")[0] == 404
    assert fails(s3.create_multipart_upload, Bucket=b, Key="mp", **sse_c(key)) == (400, "InvalidRequest")
    # Other encryption still works over http.
    s3.put_object(Bucket=b, Key="s3", Body=b"fine", ServerSideEncryption="AES256")
    assert get(s3, b, "s3") == b"fine"


def test_sse_c_over_https_without_the_flag(tls_srv, tmp_path):
    s = tls_srv
    s3 = s.client("s3")
    b = unique("ssec-tls")
    s3.create_bucket(Bucket=b)
    key, other = os.urandom(32), os.urandom(32)
    body = os.urandom(3 * SEG + 1)
    s3.put_object(Bucket=b, Key="k", Body=body, **sse_c(key))
    assert get(s3, b, "k", **sse_c(key)) == body
    assert fails(s3.get_object, Bucket=b, Key="k", **sse_c(other)) == (403, "AccessDenied")
    assert fails(s3.get_object, Bucket=b, Key="k") == (400, "InvalidRequest")

    # The CLI's --sse-c flags, up and down.
    keyfile = tmp_path / "key.bin"
    keyfile.write_bytes(key)
    src = tmp_path / "cli.bin"
    src.write_bytes(os.urandom(200_000))
    s.aws("s3", "cp", str(src), f"s3://{b}/cli.bin", "--sse-c", "AES256", "--sse-c-key", f"fileb://{keyfile}", "--only-show-errors")
    head = s.aws(
        "s3api", "head-object", "--bucket", b, "--key", "cli.bin",
        "--sse-customer-algorithm", "AES256", "--sse-customer-key", f"fileb://{keyfile}", expect_json=True,
    )
    assert head["SSECustomerAlgorithm"] == "AES256", head
    out = tmp_path / "cli.out"
    s.aws("s3", "cp", f"s3://{b}/cli.bin", str(out), "--sse-c", "AES256", "--sse-c-key", f"fileb://{keyfile}", "--only-show-errors")
    assert out.read_bytes() == src.read_bytes()
    assert get(s3, b, "cli.bin", **sse_c(key)) == src.read_bytes()


# --- 7. bucket keys -------------------------------------------------------------------


def test_bucket_key_on_request_and_as_bucket_default(s3, kms, bucket):
    m = kms.create_key()["KeyMetadata"]
    body = os.urandom(SEG * 2 + 9)
    r = s3.put_object(
        Bucket=bucket, Key="bk", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=m["KeyId"], BucketKeyEnabled=True
    )
    assert r["BucketKeyEnabled"] is True and r["SSEKMSKeyId"] == m["Arn"], r
    head = s3.head_object(Bucket=bucket, Key="bk")
    assert head["BucketKeyEnabled"] is True and head["SSEKMSKeyId"] == m["Arn"], head
    g = s3.get_object(Bucket=bucket, Key="bk")
    assert g["Body"].read() == body and g["BucketKeyEnabled"] is True

    b2 = unique("bk-default")
    s3.create_bucket(Bucket=b2)
    s3.put_bucket_encryption(
        Bucket=b2,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": m["Arn"]},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    rule = s3.get_bucket_encryption(Bucket=b2)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["BucketKeyEnabled"] is True, rule
    objs = {f"obj-{i:02}": os.urandom(100 + i * 7000) for i in range(20)}  # inline and blob
    for key, body in objs.items():
        r = s3.put_object(Bucket=b2, Key=key, Body=body)
        assert r["ServerSideEncryption"] == "aws:kms" and r["BucketKeyEnabled"] is True, r
    for key, body in objs.items():
        head = s3.head_object(Bucket=b2, Key=key)
        assert head["BucketKeyEnabled"] is True and head["SSEKMSKeyId"] == m["Arn"], (key, head)
        assert get(s3, b2, key) == body, key
    # Multipart under the bucket default keeps the bucket key.
    up = s3.create_multipart_upload(Bucket=b2, Key="mp")
    p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
    parts = [
        {"PartNumber": i, "ETag": s3.upload_part(Bucket=b2, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)["ETag"]}
        for i, p in enumerate([p1, p2], start=1)
    ]
    s3.complete_multipart_upload(Bucket=b2, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=b2, Key="mp")["BucketKeyEnabled"] is True
    assert get(s3, b2, "mp") == p1 + p2


def test_bucket_key_objects_read_back_after_restart(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    try:
        s3, kms = s.client("s3"), s.client("kms")
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        b = unique("bk-restart")
        s3.create_bucket(Bucket=b)
        objs = {f"o{i}": os.urandom(50 + i * 30000) for i in range(5)}
        for key, body in objs.items():
            s3.put_object(Bucket=b, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid, BucketKeyEnabled=True)
    finally:
        s.stop()
    s = Server(d).start()
    try:
        s3 = s.client("s3")
        for key, body in objs.items():
            assert get(s3, b, key) == body, key
    finally:
        s.stop()


# --- 8. encryption context --------------------------------------------------------------


def test_encryption_context_is_returned_and_required_parts_validated(s3, kms, bucket):
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"project": "coffer", "team": "storage"}
    ctx_b64 = base64.b64encode(json.dumps(ctx).encode()).decode()
    body = os.urandom(SEG + 1)
    r = s3.put_object(
        Bucket=bucket, Key="ctx", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid,
        SSEKMSEncryptionContext=ctx_b64,
    )
    assert r["ServerSideEncryption"] == "aws:kms", r
    assert json.loads(base64.b64decode(r["SSEKMSEncryptionContext"])) == ctx, r
    assert get(s3, bucket, "ctx") == body

    # With a bucket key too.
    s3.put_object(
        Bucket=bucket, Key="ctx-bk", Body=b"bk", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid,
        SSEKMSEncryptionContext=ctx_b64, BucketKeyEnabled=True,
    )
    assert get(s3, bucket, "ctx-bk") == b"bk"

    for bad in [
        base64.b64encode(b"not json").decode(),
        "!!!not base64!!!",
        base64.b64encode(b'["a", "list"]').decode(),
        base64.b64encode(json.dumps({"aws:s3:arn": "arn:aws:s3:::other/key"}).encode()).decode(),
    ]:
        status, code = fails(
            s3.put_object, Bucket=bucket, Key="bad-ctx", Body=b"x", ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kid, SSEKMSEncryptionContext=bad,
        )
        assert (status, code) == (400, "InvalidArgument"), bad
    assert fails(s3.head_object, Bucket=bucket, Key="bad-ctx")[0] == 404


def test_encryption_context_is_bound_and_echoed_on_put(s3, kms, bucket):
    """AWS returns x-amz-server-side-encryption-context on PutObject, CopyObject and
    CreateMultipartUpload only (botocore's HeadObject/GetObject models have no such
    member), and the context stays bound to the object's data key."""
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"purpose": "head-check"}
    ctx_b64 = base64.b64encode(json.dumps(ctx).encode()).decode()
    for key, extra in [("plain", {}), ("bk", {"BucketKeyEnabled": True})]:
        r = s3.put_object(
            Bucket=bucket, Key=key, Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid,
            SSEKMSEncryptionContext=ctx_b64, **extra,
        )
        assert json.loads(base64.b64decode(r["SSEKMSEncryptionContext"])) == ctx, key
        headers = s3.head_object(Bucket=bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
        assert "x-amz-server-side-encryption-context" not in headers
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"


# --- 9. CopyObject re-encrypts --------------------------------------------------------


def test_copy_object_reencrypts(s3, kms, bucket):
    a = kms.create_key()["KeyMetadata"]
    b = kms.create_key()["KeyMetadata"]
    body = os.urandom(3 * SEG + 11)
    s3.put_object(Bucket=bucket, Key="src", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])

    r = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
        ServerSideEncryption="aws:kms", SSEKMSKeyId=b["KeyId"],
    )
    assert r["SSEKMSKeyId"] == b["Arn"], r
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == b["Arn"], head
    assert get(s3, bucket, "dst") == body
    # The copy does not depend on A any more.
    kms.disable_key(KeyId=a["KeyId"])
    try:
        assert kms_error(s3, bucket, "src") == "KMS.DisabledException"
        assert get(s3, bucket, "dst") == body
    finally:
        kms.enable_key(KeyId=a["KeyId"])

    # Copy onto itself with new SSE headers re-keys it in place.
    status, code = fails(s3.copy_object, Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert (status, code) == (400, "InvalidRequest")
    r = s3.copy_object(
        Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
        ServerSideEncryption="AES256", MetadataDirective="COPY",
    )
    assert r["ServerSideEncryption"] == "AES256", r
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head, head
    assert get(s3, bucket, "src") == body
    check_range(s3, bucket, "src", body, f"{SEG - 1}-{SEG}", SEG - 1, SEG)
    # No longer under A: disabling A does not stop it.
    kms.disable_key(KeyId=a["KeyId"])
    try:
        assert get(s3, bucket, "src") == body
    finally:
        kms.enable_key(KeyId=a["KeyId"])

    # Without SSE headers, a copy follows the destination bucket's default (SSE-S3 where
    # nothing is configured), not the source.
    plain_dst = unique("copy-plain")
    s3.create_bucket(Bucket=plain_dst)
    s3.copy_object(Bucket=plain_dst, Key="c", CopySource={"Bucket": bucket, "Key": "dst"})
    head = s3.head_object(Bucket=plain_dst, Key="c")
    assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head, head
    assert get(s3, plain_dst, "c") == body


# --- 10. tampering ----------------------------------------------------------------------


def get_fails(s3, bucket, key, expected):
    """GET must not hand back the full, intact-looking body: an error status, or a
    truncated or failed body."""
    try:
        r = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return f"status {e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error']['Code']}"
    except botocore.exceptions.BotoCoreError as e:  # e.g. closed before a response
        return f"no response: {type(e).__name__}"
    try:
        got = r["Body"].read()
    except (botocore.exceptions.BotoCoreError, OSError, ConnectionError) as e:
        return f"body failed: {type(e).__name__}"
    assert len(got) != len(expected), "a tampered object was served in full" + (
        " (and unchanged: wrong blob?)" if got == expected else " with altered bytes"
    )
    return f"truncated to {len(got)} of {len(expected)}"


def newest_blob(data_dir):
    blobs = [p for p in (Path(data_dir) / "blobs").rglob("*") if p.is_file()]
    assert blobs, "no blob files"
    return max(blobs, key=lambda p: p.stat().st_mtime_ns)


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@pytest.mark.skipif(TIER == "s3", reason="flips a byte of a blob file of the embedded store")
def test_flipped_stored_byte_fails_the_get(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    s3 = s.client("s3")
    b = unique("tamper")
    s3.create_bucket(Bucket=b)
    kid = s.client("kms").create_key()["KeyMetadata"]["KeyId"]
    body = os.urandom(5 * SEG + 1234)
    s3.put_object(Bucket=b, Key="victim", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    blob = newest_blob(d)
    segments = -(-len(body) // SEG)
    assert blob.stat().st_size == HEADER + len(body) + segments * TAG, "not the encrypted extent"
    s.stop()

    try:
        for offset in [blob.stat().st_size // 2, 10]:  # mid-segment; inside the header's salt
            flip(blob, offset)
            s = Server(d).start()
            s3 = s.client("s3")
            how = get_fails(s3, b, "victim", body)
            assert how, offset
            s.stop()
            # Restored, the object reads back: it was this byte that broke it.
            flip(blob, offset)
            s = Server(d).start()
            s3 = s.client("s3")
            assert get(s3, b, "victim") == body, offset
            s.stop()
    finally:
        s.stop()


def raw_get(endpoint, path):
    """(status, body bytes received before the body ended or broke); status None if the
    connection closed before a status line."""
    import http.client
    import urllib.parse

    u = urllib.parse.urlsplit(endpoint)
    headers = s3raw.sign("GET", endpoint + path, {"Host": f"{u.hostname}:{u.port}"})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        try:
            r = conn.getresponse()
        except http.client.RemoteDisconnected:
            return None, b""
        got = b""
        try:
            while True:
                chunk = r.read1(1 << 16)
                if not chunk:
                    break
                got += chunk
        except (http.client.IncompleteRead, ConnectionError) as e:
            got += getattr(e, "partial", b"")
        return r.status, got
    finally:
        conn.close()


@pytest.mark.skipif(TIER == "s3", reason="flips a byte of a blob file of the embedded store")
def test_a_tampered_segment_never_yields_a_wrong_byte(tmp_path):
    """A changed byte in the header or the first segment fails the GET before its status
    line (an error, not a 200); one in a later segment ends the body after the segments
    before it, so what arrived is exactly a prefix of the object (or nothing at all, when
    the segments before it were still in the server's write buffer)."""
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    b = unique("prefix")
    s.client("s3").create_bucket(Bucket=b)
    body = os.urandom(40 * SEG + 1234)
    s.client("s3").put_object(Bucket=b, Key="victim", Body=body, ServerSideEncryption="aws:kms")
    blob = newest_blob(d)
    s.stop()
    stored = SEG + TAG
    prefixes = []
    cases = [
        ("header salt", 10, 0),
        ("first segment", HEADER + 100, 0),
        ("third segment", HEADER + 2 * stored + 500, 2),
        ("31st segment", HEADER + 30 * stored + 7, 30),
        ("last segment's tag", blob.stat().st_size - 3, 40),
    ]
    for name, offset, whole_segments in cases:
        flip(blob, offset)
        s = Server(d).start()
        try:
            try:
                status, got = raw_get(s.endpoint, f"/{b}/victim")
            except Exception as e:
                raise AssertionError(f"{name}: {e!r}") from e
        finally:
            s.stop()
        flip(blob, offset)
        if whole_segments == 0:
            assert status >= 500, f"{name}: answered {status} with {len(got)} bytes"
            continue
        assert status in (200, None), name
        assert len(got) <= whole_segments * SEG, f"{name}: {len(got)} bytes arrived"
        assert got == body[:len(got)], f"{name}: a wrong byte arrived"
        prefixes.append((name, status, len(got)))
    # The damage far in is met after some of the object went out: a real prefix.
    assert any(n > 0 for _, _, n in prefixes), prefixes
    s = Server(d).start()
    try:
        assert get(s.client("s3"), b, "victim") == body
    finally:
        s.stop()


# --- 11. errors -----------------------------------------------------------------------


def test_sse_request_errors(srv, s3, kms, bucket):
    missing = str(uuid.uuid4())
    for ref in [missing, "alias/" + unique("no-such-alias"), f"arn:aws:kms:{REGION}:000000000000:key/{missing}"]:
        status, code = fails(
            s3.put_object, Bucket=bucket, Key="nokey", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=ref
        )
        assert (status, code) == (400, "KMS.NotFoundException"), ref
    assert fails(s3.head_object, Bucket=bucket, Key="nokey")[0] == 404
    status, code = fails(
        s3.create_multipart_upload, Bucket=bucket, Key="nokey", ServerSideEncryption="aws:kms", SSEKMSKeyId=missing
    )
    assert (status, code) == (400, "KMS.NotFoundException")

    key = os.urandom(32)
    status, code = fails(
        s3.put_object, Bucket=bucket, Key="both", Body=b"x", ServerSideEncryption="aws:kms", **sse_c(key)
    )
    assert status == 400 and code == "InvalidArgument", code
    assert fails(s3.head_object, Bucket=bucket, Key="both")[0] == 404

    for bad in [os.urandom(16), os.urandom(31), os.urandom(33)]:
        assert fails(s3.put_object, Bucket=bucket, Key="short", Body=b"x", **sse_c(bad)) == (400, "InvalidArgument")
    assert fails(s3.head_object, Bucket=bucket, Key="short")[0] == 404

    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    # A KMS key id without aws:kms.
    assert fails(s3.put_object, Bucket=bucket, Key="k", Body=b"x", SSEKMSKeyId=kid) == (400, "InvalidArgument")
    assert fails(
        s3.put_object, Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId=kid
    ) == (400, "InvalidArgument")
    # SSE-C with another algorithm, and a key whose MD5 does not match (raw request).
    assert fails(
        s3.put_object, Bucket=bucket, Key="k", Body=b"x",
        SSECustomerAlgorithm="AES128", SSECustomerKey=key,
    )[0] == 400
    k64 = base64.b64encode(key).decode()
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    status, _, resp = s3raw.request(
        srv.endpoint, "PUT", f"/{bucket}/raw", body=b"x",
        headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": k64,
            "x-amz-server-side-encryption-customer-key-MD5": wrong_md5,
        },
    )
    assert status == 400 and b"InvalidArgument" in resp, (status, resp)
    status, _, resp = s3raw.request(
        srv.endpoint, "PUT", f"/{bucket}/raw", body=b"x",
        headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": k64,
        },
    )
    assert status == 400 and b"InvalidArgument" in resp, (status, resp)
    assert fails(s3.head_object, Bucket=bucket, Key="raw")[0] == 404

    # A bucket default with another algorithm is refused.
    status, code = fails(
        s3.put_bucket_encryption, Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES128"}}]},
    )
    assert status == 400, code


def test_get_bucket_encryption_without_a_configuration(s3, kms, bucket, tmp_path):
    """Never configured, and configured then deleted: SSE-S3, as every AWS bucket since
    2023. Only a server that opted out of default encryption answers
    ServerSideEncryptionConfigurationNotFoundError, with S3's 404 status."""
    sse_s3 = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == sse_s3
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}}]
        },
    )
    s3.delete_bucket_encryption(Bucket=bucket)
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == sse_s3

    with plaintext_server(tmp_path / "plain") as plain:
        ps3 = plain.client("s3")
        ps3.create_bucket(Bucket="plain")
        assert fails(ps3.get_bucket_encryption, Bucket="plain") == (404, "ServerSideEncryptionConfigurationNotFoundError")
        ps3.put_bucket_encryption(
            Bucket="plain",
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        )
        assert ps3.get_bucket_encryption(Bucket="plain")["ServerSideEncryptionConfiguration"]["Rules"] == sse_s3
        ps3.delete_bucket_encryption(Bucket="plain")
        assert fails(ps3.get_bucket_encryption, Bucket="plain") == (404, "ServerSideEncryptionConfigurationNotFoundError")
