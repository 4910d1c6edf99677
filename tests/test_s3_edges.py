"""AWS's exact answers at the edges of reads, copies and encryption headers, as S3's
recorded replies give them: GET/HEAD refuse an x-amz-server-side-encryption header; SSE-C
with another SSE method is InvalidArgument; a wrong SSE-C key is 403 with AWS's message;
partNumber reads (206, x-amz-mp-parts-count only for multipart objects, 416
InvalidPartNumber beyond the count, the Range conflict, the 1..10000 bound); UploadPartCopy
ranges (malformed, starting past the end, running past the end) and encoding-type=url."""

import base64
import hashlib
import os
import re
import tempfile
import uuid

import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import Server


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def body_error(body):
    return s3raw.error_code(body), re.search(rb"<Message>(.*?)</Message>", body).group(1).decode()


def test_reads_refuse_encryption_headers(s3, bucket, shared_server):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    for method in ("GET", "HEAD"):
        status, _, body = s3raw.request(shared_server.endpoint, method, f"/{bucket}/k",
                                        headers={"x-amz-server-side-encryption": "AES256"})
        assert status == 400, method
        if method == "GET":
            assert body_error(body) == ("InvalidArgument",
                                        "x-amz-server-side-encryption header is not supported for this operation.")


def test_part_number_reads(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"01234567")
    r = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == "bytes 0-7/8" and r["Body"].read() == b"01234567"
    assert "PartsCount" not in r, "only multipart objects report a part count"
    assert err(s3.get_object, Bucket=bucket, Key="single", PartNumber=2) == \
        (416, "InvalidPartNumber", "The requested partnumber is not satisfiable")
    assert err(s3.get_object, Bucket=bucket, Key="single", PartNumber=0) == \
        (400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
    assert err(s3.get_object, Bucket=bucket, Key="single", PartNumber=1, Range="bytes=0-1") == \
        (400, "InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    up = s3.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
    first, second = os.urandom(5 * 1024 * 1024), b"tail"
    e1 = s3.upload_part(Bucket=bucket, Key="multi", UploadId=up, PartNumber=1, Body=first)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="multi", UploadId=up, PartNumber=2, Body=second)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    r = s3.get_object(Bucket=bucket, Key="multi", PartNumber=2)
    assert r["PartsCount"] == 2 and r["Body"].read() == second
    assert r["ContentRange"] == f"bytes {len(first)}-{len(first) + 3}/{len(first) + 4}"
    assert s3.head_object(Bucket=bucket, Key="multi", PartNumber=1)["ContentLength"] == len(first)
    assert err(s3.get_object, Bucket=bucket, Key="multi", PartNumber=3)[:2] == (416, "InvalidPartNumber")


def test_upload_part_copy_ranges(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    form = ("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are "
            "the zero-based offsets of the first and last bytes to copy")
    for rng, expected in [
        ("bytes=abc", (400, "InvalidArgument", form)),
        ("bytes=5-1", (400, "InvalidArgument", form)),
        ("bytes=0-100", (400, "InvalidArgument", "Range specified is not valid for source object of size: 10")),
        ("bytes=100-200", (400, "InvalidRequest", "The specified copy range is invalid for the source object size")),
    ]:
        assert err(s3.upload_part_copy, Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                   CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=rng) == expected, rng
    r = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=2-5")
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"2345"


def test_listing_keys_are_url_encoded_on_request(s3, bucket):
    key = "a b+c=d/é~*"
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
    # botocore asks for encoding-type=url and decodes: the key round-trips.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == [key]
    assert err(s3.list_objects_v2, Bucket=bucket, EncodingType="bogus")[:3] == \
        (400, "InvalidArgument", "Invalid Encoding Method specified in Request")


def test_sse_c_edges():
    with tempfile.TemporaryDirectory(prefix="coffer-edges-") as d:
        s = Server(d, extra_args=["--allow-insecure-sse-c"]).start()
        try:
            s3 = s.client()
            b = f"ssec-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=b)
            key, other = os.urandom(32), os.urandom(32)

            def headers(k, prefix="x-amz-server-side-encryption-customer"):
                return {f"{prefix}-algorithm": "AES256", f"{prefix}-key": base64.b64encode(k).decode(),
                        f"{prefix}-key-MD5": base64.b64encode(hashlib.md5(k).digest()).decode()}

            for method in ("aws:kms", "AES256"):
                status, _, body = s3raw.request(s.endpoint, "PUT", f"/{b}/c", body=b"x",
                                                headers={**headers(key), "x-amz-server-side-encryption": method})
                assert (status, *body_error(body)) == (400, "InvalidArgument",
                    "Server Side Encryption with Customer provided key is incompatible with the encryption method specified")
            assert s3raw.request(s.endpoint, "PUT", f"/{b}/ok", body=b"x", headers=headers(key))[0] == 200
            status, _, body = s3raw.request(s.endpoint, "GET", f"/{b}/ok", headers=headers(other))
            assert (status, *body_error(body)) == (403, "AccessDenied",
                "Requests specifying Server Side Encryption with Customer provided keys must provide the correct secret key.")
            assert s3raw.request(s.endpoint, "HEAD", f"/{b}/ok", headers=headers(other))[0] == 403
            status, _, body = s3raw.request(s.endpoint, "GET", f"/{b}/ok")
            assert (status, s3raw.error_code(body)) == (400, "InvalidRequest")
            assert s3raw.request(s.endpoint, "HEAD", f"/{b}/ok")[0] == 400
            copy = {"x-amz-copy-source": f"/{b}/ok",
                    **headers(other, "x-amz-copy-source-server-side-encryption-customer")}
            assert s3raw.request(s.endpoint, "PUT", f"/{b}/copy", headers=copy)[0] == 403
            assert s3raw.request(s.endpoint, "GET", f"/{b}/ok", headers=headers(key))[2] == b"x"
        finally:
            s.stop()


def test_metadata_is_rfc2047_decoded_when_stored_and_encoded_when_returned(s3, bucket):
    # "ÄMÄZÕÑ S3", sent as an RFC 2047 B-encoded word (HTTP headers carry ASCII).
    s3.put_object(Bucket=bucket, Key="m", Body=b"", Metadata={
        "name": "=?UTF-8?B?w4RNw4Raw5XDkSBTMw==?=", "plain": "abc", "q": "=?UTF-8?Q?actually-ascii?="})
    meta = s3.head_object(Bucket=bucket, Key="m")["Metadata"]
    # Returned as S3 returns it: one Q-encoded word for a mostly-ASCII value.
    assert meta == {"name": "=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?=", "plain": "abc", "q": "actually-ascii"}
    # Control characters make a B-encoded word.
    s3.put_object(Bucket=bucket, Key="b", Body=b"", Metadata={"c": "=?UTF-8?B?AAECAw==?="})
    assert s3.get_object(Bucket=bucket, Key="b")["Metadata"] == {"c": "=?UTF-8?B?AAECAw==?="}


def test_streaming_uploads_without_content_length(shared_server, bucket):
    """What SDKs send for a body of unknown length (aws-chunked framing with its decoded
    length and a trailing checksum, in HTTP chunked transfer coding, no Content-Length):
    accepted, as on AWS. A plain chunked body is refused (tests/test_auth_edges.py)."""
    import http.client
    import urllib.parse
    import zlib

    data = b"hello streaming world"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    framed = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    path = f"/{bucket}/stream"
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32", "Transfer-Encoding": "chunked"}
    signed = s3raw.sign("PUT", shared_server.endpoint + path, headers, b"",
                        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    signed.pop("Content-Length", None)
    u = urllib.parse.urlsplit(shared_server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("PUT", path, skip_accept_encoding=True)
        for k, v in signed.items():
            conn.putheader(k, v)
        conn.endheaders()
        conn.send(f"{len(framed):x}\r\n".encode() + framed + b"\r\n0\r\n\r\n")
        r = conn.getresponse()
        assert r.status == 200, r.read()
        r.read()
    finally:
        conn.close()
    s3 = shared_server.client()
    got = s3.get_object(Bucket=bucket, Key="stream", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == crc
    assert "ContentEncoding" not in got, "aws-chunked is not stored"
