"""Bucket default encryption's BlockedEncryptionTypes and UpdateObjectEncryption, with
boto3 and the stock aws CLI.

- BlockedEncryptionTypes `SSE-C` refuses new SSE-C writes (PutObject, CopyObject,
  CreateMultipartUpload) with 403 AccessDenied while existing SSE-C objects stay
  readable; `NONE` lifts the block.
- UpdateObjectEncryption (`PUT /BUCKET/KEY?encryption`) moves an SSE-S3 or SSE-KMS object
  under another KMS key, with or without a bucket key, by re-wrapping its object key: the
  stored bytes (every blob file), ETag and Last-Modified are unchanged, and afterwards
  only the new key's state governs reads.
"""

import hashlib
import json
import os

import s3raw
from conftest import Server
# The module's server (http, SSE-C allowed over http) and clients are test_sse's fixtures.
from test_sse import SEG, MiB, bucket, plaintext_server, fails, get, kms, kms_error, marked, new_marker, s3, srv, sse_c  # noqa: F401


def stored_bytes(server):
    """Hash of every stored blob (a blob file, or an object of a scale-out node's blob
    tier): what must not change when only keys are re-wrapped."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in server.at_rest()
            if name.startswith(("blobs/", "tier/"))}


# --- BlockedEncryptionTypes -----------------------------------------------------------


def test_blocked_sse_c_refuses_new_sse_c_writes_only(srv, s3, kms, bucket):
    key = os.urandom(32)
    s3.put_object(Bucket=bucket, Key="before", Body=b"written before the block", **sse_c(key))

    cfg = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
            }
        ]
    }
    srv.aws(
        "s3api", "put-bucket-encryption", "--bucket", bucket,
        "--server-side-encryption-configuration", json.dumps(cfg),
    )
    got = srv.aws("s3api", "get-bucket-encryption", "--bucket", bucket, expect_json=True)
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}, rule
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", rule

    # Every way of writing SSE-C is refused, and nothing is written.
    assert fails(s3.put_object, Bucket=bucket, Key="new", Body=b"x", **sse_c(key)) == (403, "AccessDenied")
    assert fails(s3.create_multipart_upload, Bucket=bucket, Key="mp", **sse_c(key)) == (403, "AccessDenied")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    s3.put_object(Bucket=bucket, Key="plain-src", Body=b"src")
    assert fails(
        s3.copy_object, Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "plain-src"}, **sse_c(key)
    ) == (403, "AccessDenied")
    for k in ["new", "copy"]:
        assert fails(s3.head_object, Bucket=bucket, Key=k)[0] == 404
    p = srv.aws(
        "s3", "cp", "-", f"s3://{bucket}/cli-new", "--sse-c", "AES256", "--sse-c-key",
        "0123456789abcdef0123456789abcdef", input=b"x", check=False,
    )
    assert p.returncode != 0 and b"AccessDenied" in p.stderr, p.stderr

    # Existing SSE-C objects stay readable; other encryption still writes.
    assert get(s3, bucket, "before", **sse_c(key)) == b"written before the block"
    s3.put_object(Bucket=bucket, Key="kms", Body=b"k", ServerSideEncryption="aws:kms")
    # The bucket default (SSE-S3) applies to writes without headers.
    assert s3.put_object(Bucket=bucket, Key="dflt", Body=b"d")["ServerSideEncryption"] == "AES256"

    # A bad EncryptionType is MalformedXML and changes nothing.
    bad = {"Rules": [{"BlockedEncryptionTypes": {"EncryptionType": ["SSE-BOGUS"]}}]}
    assert fails(
        s3.put_bucket_encryption, Bucket=bucket, ServerSideEncryptionConfiguration=bad
    ) == (400, "MalformedXML")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["BlockedEncryptionTypes"]["EncryptionType"] == ["SSE-C"], rule

    # NONE lifts the block.
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                    "BucketKeyEnabled": True,
                    "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]},
                }
            ]
        },
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["BlockedEncryptionTypes"]["EncryptionType"] == ["NONE"] and rule["BucketKeyEnabled"] is True, rule
    s3.put_object(Bucket=bucket, Key="new", Body=b"allowed again", **sse_c(key))
    assert get(s3, bucket, "new", **sse_c(key)) == b"allowed again"


def test_bucket_encryption_without_blocked_types_still_parses_as_before(srv, s3, bucket):
    # The exact command shape (no BlockedEncryptionTypes) and a response that
    # omits the element when it was never set.
    kid = srv.client("kms").create_key()["KeyMetadata"]["Arn"]
    srv.aws(
        "s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration",
        json.dumps({"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kid}}]}),
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kid}, rule
    assert "BlockedEncryptionTypes" not in rule, rule
    # Malformed XML is refused before anything changes.
    for body in [b"<ServerSideEncryptionConfiguration><Rule>", b"<Nope/>", b"not xml"]:
        status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{bucket}?encryption", body=body)
        assert status == 400 and s3raw.error_code(resp) == "MalformedXML", (body, status, resp)
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == kid


# --- UpdateObjectEncryption -------------------------------------------------------------


def rekey(s3, bucket, key, arn, bucket_key=None):
    sse = {"KMSKeyArn": arn}
    if bucket_key is not None:
        sse["BucketKeyEnabled"] = bucket_key
    return s3.update_object_encryption(Bucket=bucket, Key=key, ObjectEncryption={"SSEKMS": sse})


def test_update_object_encryption_rewraps_without_touching_the_bytes(srv, s3, kms, bucket):
    a = kms.create_key(Description="old")["KeyMetadata"]
    b = kms.create_key(Description="new")["KeyMetadata"]
    m = new_marker("rekey")
    body = marked(m, 3 * SEG + 11)
    s3.put_object(Bucket=bucket, Key="s3", Body=body, ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="kms", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])
    before = {k: s3.head_object(Bucket=bucket, Key=k) for k in ["s3", "kms"]}
    blobs = stored_bytes(srv)
    assert blobs, "the objects live in blob files"

    # SSE-S3 -> SSE-KMS under B, with the CLI.
    srv.aws(
        "s3api", "update-object-encryption", "--bucket", bucket, "--key", "s3",
        "--object-encryption", json.dumps({"SSEKMS": {"KMSKeyArn": b["Arn"]}}),
    )
    # SSE-KMS under A -> B with a bucket key, with boto3.
    rekey(s3, bucket, "kms", b["Arn"], bucket_key=True)

    assert stored_bytes(srv) == blobs, "no data was rewritten"
    for k, bucket_key in [("s3", False), ("kms", True)]:
        h = s3.head_object(Bucket=bucket, Key=k)
        assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == b["Arn"], h
        assert h.get("BucketKeyEnabled", False) is bucket_key, h
        assert h["ETag"] == before[k]["ETag"] and h["LastModified"] == before[k]["LastModified"], (h, before[k])
        assert get(s3, bucket, k) == body
        r = s3.get_object(Bucket=bucket, Key=k, Range=f"bytes={SEG - 2}-{2 * SEG + 1}")
        assert r["Body"].read() == body[SEG - 2 : 2 * SEG + 2]
    assert srv.stored_with(m) == []

    # Only B's state matters now: A disabled, reads work; B disabled, they stop.
    kms.disable_key(KeyId=a["KeyId"])
    for k in ["s3", "kms"]:
        assert get(s3, bucket, k) == body
    kms.disable_key(KeyId=b["KeyId"])
    for k in ["s3", "kms"]:
        assert kms_error(s3, bucket, k) == "KMS.DisabledException", k
    kms.enable_key(KeyId=b["KeyId"])
    kms.enable_key(KeyId=a["KeyId"])

    # Back from a bucket key to a per-object key under A.
    rekey(s3, bucket, "kms", a["Arn"], bucket_key=False)
    h = s3.head_object(Bucket=bucket, Key="kms")
    assert h["SSEKMSKeyId"] == a["Arn"] and not h.get("BucketKeyEnabled", False), h
    assert get(s3, bucket, "kms") == body
    assert stored_bytes(srv) == blobs


def test_update_object_encryption_of_multipart_objects_and_after_restart(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    try:
        s3, kms = s.client("s3"), s.client("kms")
        s3.create_bucket(Bucket="mpbucket")
        a = kms.create_key()["KeyMetadata"]
        b = kms.create_key()["KeyMetadata"]
        p1, p2 = os.urandom(5 * MiB), os.urandom(SEG + 9)
        up = s3.create_multipart_upload(Bucket="mpbucket", Key="o", ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])
        parts = []
        for i, part in enumerate([p1, p2], start=1):
            r = s3.upload_part(Bucket="mpbucket", Key="o", UploadId=up["UploadId"], PartNumber=i, Body=part)
            parts.append({"PartNumber": i, "ETag": r["ETag"]})
        s3.complete_multipart_upload(Bucket="mpbucket", Key="o", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
        rekey(s3, "mpbucket", "o", b["Arn"], bucket_key=True)
        kms.schedule_key_deletion(KeyId=a["KeyId"], PendingWindowInDays=7)
    finally:
        s.stop()
    s = Server(d).start()
    try:
        s3 = s.client("s3")
        data = p1 + p2
        assert get(s3, "mpbucket", "o") == data
        r = s3.get_object(Bucket="mpbucket", Key="o", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")
        assert r["Body"].read() == data[5 * MiB - 3 : 5 * MiB + 3]
        assert get(s3, "mpbucket", "o", PartNumber=2) == p2
    finally:
        s.stop()


def test_update_object_encryption_errors_change_nothing(srv, s3, kms, bucket):
    a = kms.create_key()["KeyMetadata"]
    b = kms.create_key()["KeyMetadata"]
    s3.put_object(Bucket=bucket, Key="ssec", Body=b"c", **sse_c(os.urandom(32)))
    s3.put_object(Bucket=bucket, Key="kms", Body=b"k", ServerSideEncryption="aws:kms", SSEKMSKeyId=a["KeyId"])

    # SSE-C sources are not supported (unencrypted ones: the next test).
    assert fails(rekey, s3, bucket, "ssec", b["Arn"]) == (400, "InvalidRequest")
    # The key must be given as an ARN.
    for not_arn in [b["KeyId"], "alias/some-alias-name-here"]:
        assert fails(rekey, s3, bucket, "kms", not_arn) == (400, "InvalidRequest")
    assert fails(rekey, s3, bucket, "missing", b["Arn"]) == (404, "NoSuchKey")
    # A disabled or unknown target key fails as a write under it would.
    kms.disable_key(KeyId=b["KeyId"])
    assert fails(rekey, s3, bucket, "kms", b["Arn"]) == (400, "KMS.DisabledException")
    assert fails(rekey, s3, bucket, "kms", b["Arn"], bucket_key=True) == (400, "KMS.DisabledException")
    unknown = a["Arn"].rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert fails(rekey, s3, bucket, "kms", unknown)[0] == 400
    # Reading the old key's data needs it usable too.
    kms.enable_key(KeyId=b["KeyId"])
    kms.disable_key(KeyId=a["KeyId"])
    assert fails(rekey, s3, bucket, "kms", b["Arn"]) == (400, "KMS.DisabledException")
    kms.enable_key(KeyId=a["KeyId"])
    # After every refusal the object is as it was.
    h = s3.head_object(Bucket=bucket, Key="kms")
    assert h["SSEKMSKeyId"] == a["Arn"], h
    assert get(s3, bucket, "kms") == b"k"
    # SSE-S3 is not a valid target.
    body = b"<ObjectEncryption xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><SSE-S3/></ObjectEncryption>"
    status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{bucket}/kms?encryption", body=body)
    assert status == 400 and s3raw.error_code(resp) == "InvalidRequest", (status, resp)
    status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{bucket}/kms?encryption", body=b"<ObjectEncryption><SSE-KMS>")
    assert status == 400 and s3raw.error_code(resp) == "MalformedXML", (status, resp)


def test_update_object_encryption_refuses_unencrypted_sources(tmp_path):
    """Only a server that opted out of default encryption (or data from before it) holds
    unencrypted objects; UpdateObjectEncryption refuses them and changes nothing."""
    with plaintext_server(tmp_path / "plain") as plain:
        s3, kms = plain.client("s3"), plain.client("kms")
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="plain", Body=b"p")
        assert fails(rekey, s3, "plain", "plain", arn) == (400, "InvalidRequest")
        assert "ServerSideEncryption" not in s3.head_object(Bucket="plain", Key="plain")
        assert get(s3, "plain", "plain") == b"p"
