"""Checksums as S3 computes them since 2025: a new object the client sent no checksum for
gets a full-object CRC64NVME (PutObject, POST forms, copies), reported with
`x-amz-checksum-mode: ENABLED` on GET and HEAD, in GetObjectAttributes, and with its
`x-amz-checksum-type`; a declared checksum that does not match is BadDigest and stores
nothing. The CRC64NVME here is computed independently (CRC-64/NVME, reflected polynomial
0x9a6c9329ac4bc9b5), checked against the catalogue's check value."""

import base64
import os
import subprocess
import uuid

import pytest
import s3raw
from botocore.exceptions import ClientError

_POLY = 0x9A6C9329AC4BC9B5
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc64nvme(data: bytes) -> str:
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return base64.b64encode((c ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")).decode()


def test_the_reference_crc_is_crc64_nvme():
    assert base64.b64decode(crc64nvme(b"123456789")).hex() == "ae8b14860a799888"


@pytest.fixture
def plain(shared_server):
    """A client that sends no checksum unless an operation requires one (botocore's
    default is to send CRC32)."""
    return shared_server.client(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required")


def test_objects_written_without_a_checksum_get_crc64nvme(shared_server, plain):
    b = f"crc-{uuid.uuid4().hex[:10]}"
    plain.create_bucket(Bucket=b)
    data = os.urandom(200_000)
    plain.put_object(Bucket=b, Key="sdk", Body=data)
    head = plain.head_object(Bucket=b, Key="sdk", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == crc64nvme(data)
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert "ChecksumCRC64NVME" not in plain.head_object(Bucket=b, Key="sdk"), "only when asked for"
    got = plain.get_object(Bucket=b, Key="sdk", ChecksumMode="ENABLED")
    assert got["ChecksumCRC64NVME"] == crc64nvme(data) and got["Body"].read() == data
    attrs = plain.get_object_attributes(Bucket=b, Key="sdk", ObjectAttributes=["Checksum", "ObjectSize"])
    assert attrs["Checksum"] == {"ChecksumCRC64NVME": crc64nvme(data), "ChecksumType": "FULL_OBJECT"}

    # A plain curl upload, and a copy of an object: the same.
    url = plain.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "curl"})
    subprocess.run(["curl", "-sf", "-X", "PUT", "-H", "Content-Type:", "--data-binary", "from curl", url], check=True)
    assert plain.head_object(Bucket=b, Key="curl", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == \
        crc64nvme(b"from curl")
    plain.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "sdk"})
    assert plain.head_object(Bucket=b, Key="copy", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == crc64nvme(data)
    # An empty object too.
    plain.put_object(Bucket=b, Key="empty", Body=b"")
    assert plain.head_object(Bucket=b, Key="empty", ChecksumMode="ENABLED")["ChecksumCRC64NVME"] == crc64nvme(b"")
    # What the client asks for is what it gets.
    plain.put_object(Bucket=b, Key="sha", Body=data, ChecksumAlgorithm="SHA256")
    head = plain.head_object(Bucket=b, Key="sha", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" in head and "ChecksumCRC64NVME" not in head


def test_a_declared_crc64nvme_is_checked(shared_server, plain):
    b = f"crc-bad-{uuid.uuid4().hex[:8]}"
    plain.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=b, Key="k", Body=b"the body", ChecksumCRC64NVME=crc64nvme(b"another body"))
    assert e.value.response["Error"]["Code"] == "BadDigest"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        plain.head_object(Bucket=b, Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    r = plain.put_object(Bucket=b, Key="k", Body=b"the body", ChecksumCRC64NVME=crc64nvme(b"the body"))
    assert r["ChecksumCRC64NVME"] == crc64nvme(b"the body")


def test_the_aws_cli_sees_the_default_checksum(shared_server, tmp_path):
    b = f"crc-cli-{uuid.uuid4().hex[:8]}"
    shared_server.aws("s3api", "create-bucket", "--bucket", b)
    f = tmp_path / "f.bin"
    data = os.urandom(10_000)
    f.write_bytes(data)
    # A CLI told to send checksums only when required sends none.
    quiet = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}
    shared_server.aws("s3", "cp", str(f), f"s3://{b}/f.bin", env=quiet)
    head = shared_server.aws("s3api", "head-object", "--bucket", b, "--key", "f.bin", "--checksum-mode", "ENABLED",
                             expect_json=True, env=quiet)
    assert head["ChecksumCRC64NVME"] == crc64nvme(data)
    assert head["ChecksumType"] == "FULL_OBJECT"


def test_multipart_uploads_without_a_checksum_get_a_whole_object_crc64nvme(shared_server, plain):
    b = f"crc-mpu-{uuid.uuid4().hex[:8]}"
    plain.create_bucket(Bucket=b)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"last part"]
    up = plain.create_multipart_upload(Bucket=b, Key="m")["UploadId"]
    etags = [plain.upload_part(Bucket=b, Key="m", UploadId=up, PartNumber=n + 1, Body=p)["ETag"]
             for n, p in enumerate(parts)]
    plain.complete_multipart_upload(Bucket=b, Key="m", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
    head = plain.head_object(Bucket=b, Key="m", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == crc64nvme(b"".join(parts)), "combined from the parts' CRCs"
    assert head["ChecksumType"] == "FULL_OBJECT"
    # A client that sends its own checksum with the parts keeps it; nothing is invented.
    sdk = shared_server.client()
    up = sdk.create_multipart_upload(Bucket=b, Key="c", ChecksumAlgorithm="CRC32")["UploadId"]
    r = sdk.upload_part(Bucket=b, Key="c", UploadId=up, PartNumber=1, Body=b"only part", ChecksumAlgorithm="CRC32")
    sdk.complete_multipart_upload(Bucket=b, Key="c", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]}]})
    head = sdk.head_object(Bucket=b, Key="c", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" in head and "ChecksumCRC64NVME" not in head


def test_checksums_coffer_does_not_compute_are_refused_not_ignored(shared_server):
    """botocore's model has SHA512, MD5 and the XXHASH family too; Coffer does not compute
    them yet, so a request that declares one is refused (501, naming the header) and stores
    nothing, rather than storing a body whose checksum nobody verified."""
    s3 = shared_server.client()
    b = f"crc-new-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=b, Key="k", Body=b"data", ChecksumAlgorithm="SHA512")
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (501, "NotImplemented")
    # botocore computes only SHA512 of the new ones itself; the others as a client that
    # has them would send them.
    for algorithm in ("md5", "xxhash64", "xxhash3", "xxhash128"):
        for headers in ({f"x-amz-checksum-{algorithm}": "AAAAAAAAAAA="},
                        {"x-amz-sdk-checksum-algorithm": algorithm.upper()}):
            status, _, body = s3raw.request(shared_server.endpoint, "PUT", f"/{b}/k", body=b"data", headers=headers)
            assert (status, s3raw.error_code(body)) == (501, "NotImplemented"), headers
            assert b"<Header>" in body
    assert s3.list_objects_v2(Bucket=b).get("KeyCount") == 0
