"""Checksums as S3 computes them since 2025: a new object the client sent no checksum for
gets a full-object CRC64NVME (PutObject, POST forms, copies), reported with
`x-amz-checksum-mode: ENABLED` on GET and HEAD, in GetObjectAttributes, and with its
`x-amz-checksum-type`; a declared checksum that does not match is BadDigest and stores
nothing. The CRC64NVME here is computed independently (CRC-64/NVME, reflected polynomial
0x9a6c9329ac4bc9b5), checked against the catalogue's check value."""

import base64
import hashlib
import os
import subprocess
import uuid

import pytest
import s3raw
import xxhash
from botocore.exceptions import ClientError
from conftest import tls_server

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


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


# The algorithms S3 added in 2025, computed here by Python's hashlib and the reference xxHash
# library (C), as the AWS CRT computes them for botocore: big-endian digests, seed 0.
NEW_ALGORITHMS = {
    "SHA512": lambda d: hashlib.sha512(d).digest(),
    "MD5": lambda d: hashlib.md5(d).digest(),
    "XXHASH64": lambda d: xxhash.xxh64(d).digest(),
    "XXHASH3": lambda d: xxhash.xxh3_64(d).digest(),
    "XXHASH128": lambda d: xxhash.xxh3_128(d).digest(),
}


def test_xxhash_reference_values():
    # The AWS CRT's own test vector, and xxHash's for the empty input.
    assert xxhash.xxh64(b"Hello world").hexdigest() == "c500b0c912b376d8"
    assert xxhash.xxh3_128(b"").hexdigest() == "99aa06d3014798d86001c324468d497f"


def test_sha512_from_botocore_is_checked_stored_and_returned(shared_server):
    """botocore computes SHA512 itself (a header over HTTP); Coffer checks it, keeps it and
    returns it on HEAD, on GET (where botocore validates it) and in GetObjectAttributes."""
    s3 = shared_server.client()
    b = f"crc-512-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=b, Key="k", Body=data, ChecksumAlgorithm="SHA512")
    want = _b64(hashlib.sha512(data).digest())
    assert put["ChecksumSHA512"] == want
    head = s3.head_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA512"], head["ChecksumType"]) == (want, "FULL_OBJECT")
    assert "ChecksumSHA256" not in head
    got = s3.get_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumSHA512"] == want and got["Body"].read() == data
    attrs = s3.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumSHA512": want, "ChecksumType": "FULL_OBJECT"}
    assert s3.list_objects_v2(Bucket=b)["Contents"][0]["ChecksumAlgorithm"] == ["SHA512"]


def test_sha512_trailer_over_https():
    """Over HTTPS botocore sends SHA512 as an aws-chunked trailer."""
    with tls_server("coffer-test-512-") as s:
        s3 = s.client()
        s3.create_bucket(Bucket="tls-512")
        data = os.urandom(100_000)
        s3.put_object(Bucket="tls-512", Key="k", Body=data, ChecksumAlgorithm="SHA512")
        head = s3.head_object(Bucket="tls-512", Key="k", ChecksumMode="ENABLED")
        assert head["ChecksumSHA512"] == _b64(hashlib.sha512(data).digest())


@pytest.mark.parametrize("algorithm", sorted(NEW_ALGORITHMS))
def test_new_algorithms_declared_by_value_or_by_name(shared_server, plain, algorithm):
    """A value the caller computed is checked (BadDigest and nothing stored when wrong); an
    algorithm named without a value is computed by Coffer."""
    b = f"crc-new-{uuid.uuid4().hex[:8]}"
    plain.create_bucket(Bucket=b)
    data = os.urandom(70_000)
    want = _b64(NEW_ALGORITHMS[algorithm](data))
    member = f"Checksum{algorithm}"
    put = plain.put_object(Bucket=b, Key="k", Body=data, **{member: want})
    assert put[member] == want
    head = plain.head_object(Bucket=b, Key="k", ChecksumMode="ENABLED")
    assert head[member] == want and "ChecksumCRC64NVME" not in head

    wrong = _b64(NEW_ALGORITHMS[algorithm](data + b"x"))
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=b, Key="bad", Body=data, **{member: wrong})
    assert e.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=b, Key="bad", Body=data, **{member: "AAAA"})
    assert e.value.response["Error"]["Code"] == "InvalidRequest", "a value of the wrong length"
    assert [o["Key"] for o in plain.list_objects_v2(Bucket=b)["Contents"]] == ["k"]

    # The SDK header names how a value was computed; alone, it is refused (as on AWS).
    status, _, body = s3raw.request(shared_server.endpoint, "PUT", f"/{b}/named", body=data,
                                    headers={"x-amz-sdk-checksum-algorithm": algorithm})
    assert (status, s3raw.error_code(body)) == (400, "InvalidRequest"), body
    assert b"x-amz-sdk-checksum-algorithm specified, but no corresponding" in body
    # Named with a value of another algorithm: refused too.
    status, _, body = s3raw.request(shared_server.endpoint, "PUT", f"/{b}/named", body=data,
                                    headers={"x-amz-sdk-checksum-algorithm": algorithm,
                                             "x-amz-checksum-crc32": "AAAAAA=="})
    assert (status, s3raw.error_code(body)) == (400, "InvalidRequest"), body
    assert [o["Key"] for o in plain.list_objects_v2(Bucket=b)["Contents"]] == ["k"]


def test_new_algorithms_in_multipart_uploads_are_composite(shared_server):
    s3 = shared_server.client()
    b = f"crc-mpu-new-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=b, Key="m", ChecksumAlgorithm="SHA512", ChecksumType="FULL_OBJECT")
    assert e.value.response["Error"]["Code"] == "InvalidRequest"

    parts = [os.urandom(5 * 1024 * 1024), b"the last part"]
    up = s3.create_multipart_upload(Bucket=b, Key="m", ChecksumAlgorithm="SHA512")
    assert up["ChecksumAlgorithm"] == "SHA512"
    uploaded = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=b, Key="m", UploadId=up["UploadId"], PartNumber=n, Body=p,
                           ChecksumAlgorithm="SHA512")
        assert r["ChecksumSHA512"] == _b64(hashlib.sha512(p).digest())
        uploaded.append(r)
    listed = s3.list_parts(Bucket=b, Key="m", UploadId=up["UploadId"])
    assert listed["ChecksumAlgorithm"] == "SHA512"
    assert [p["ChecksumSHA512"] for p in listed["Parts"]] == [r["ChecksumSHA512"] for r in uploaded]
    # The part checksums named in the Complete body are compared with the parts'.
    wrong = [{"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA512": uploaded[0]["ChecksumSHA512"]}
             for n, r in enumerate(uploaded, 1)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up["UploadId"], MultipartUpload={"Parts": wrong})
    assert e.value.response["Error"]["Code"] == "InvalidPart"
    done = s3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA512": r["ChecksumSHA512"]}
                  for n, r in enumerate(uploaded, 1)]})
    composite = _b64(hashlib.sha512(b"".join(hashlib.sha512(p).digest() for p in parts)).digest())
    assert done["ChecksumSHA512"] == f"{composite}-2"
    head = s3.head_object(Bucket=b, Key="m", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA512"], head["ChecksumType"]) == (f"{composite}-2", "COMPOSITE")
    attrs = s3.get_object_attributes(Bucket=b, Key="m", ObjectAttributes=["Checksum", "ObjectParts"])
    assert [p["ChecksumSHA512"] for p in attrs["ObjectParts"]["Parts"]] == [r["ChecksumSHA512"] for r in uploaded]


def test_the_aws_cli_uploads_a_multipart_file_with_sha512(shared_server, tmp_path):
    """`aws s3 cp --checksum-algorithm SHA512` of a file above the multipart threshold: the
    parts carry SHA512, and the Complete body names each part's (as s3transfer sends it)."""
    b = f"crc-cli-512-{uuid.uuid4().hex[:8]}"
    shared_server.aws("s3", "mb", f"s3://{b}")
    src = tmp_path / "big"
    data = os.urandom(9 * 1024 * 1024)
    src.write_bytes(data)
    shared_server.aws("s3", "cp", str(src), f"s3://{b}/big", "--checksum-algorithm", "SHA512")
    head = shared_server.aws("s3api", "head-object", "--bucket", b, "--key", "big", "--checksum-mode", "ENABLED",
                             expect_json=True)
    assert head["ChecksumType"] == "COMPOSITE" and head["ChecksumSHA512"].endswith("-2"), head
    parts = [data[:8 * 1024 * 1024], data[8 * 1024 * 1024:]]
    composite = _b64(hashlib.sha512(b"".join(hashlib.sha512(p).digest() for p in parts)).digest())
    assert head["ChecksumSHA512"] == f"{composite}-2"
    out = tmp_path / "back"
    shared_server.aws("s3", "cp", f"s3://{b}/big", str(out))
    assert out.read_bytes() == data


def test_copies_compute_a_new_algorithm_when_asked(shared_server, plain):
    b = f"crc-copy-new-{uuid.uuid4().hex[:8]}"
    plain.create_bucket(Bucket=b)
    data = os.urandom(50_000)
    plain.put_object(Bucket=b, Key="src", Body=data)
    r = plain.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"},
                          ChecksumAlgorithm="XXHASH128")
    want = _b64(xxhash.xxh3_128(data).digest())
    assert r["CopyObjectResult"]["ChecksumXXHASH128"] == want
    head = plain.head_object(Bucket=b, Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumXXHASH128"] == want
    # A copy without an algorithm keeps the source's.
    plain.copy_object(Bucket=b, Key="again", CopySource={"Bucket": b, "Key": "dst"})
    assert plain.head_object(Bucket=b, Key="again", ChecksumMode="ENABLED")["ChecksumXXHASH128"] == want
