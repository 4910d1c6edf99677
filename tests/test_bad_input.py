"""Bad input gets a clear S3 error and changes nothing: malformed XML, bodies cut short,
hostile object names, skewed clocks, payloads that do not match their declared hash."""

import base64
import hashlib
import os
import socket
import urllib.parse
import uuid
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import s3raw

KiB = 1024
MiB = 1024 * KiB


def files_under(d):
    d = Path(d)
    return sorted(p for p in d.rglob("*") if p.is_file())


def blob_files(data_dir):
    """Object data files: published blobs and anything in staging."""
    return files_under(Path(data_dir) / "blobs") + files_under(Path(data_dir) / "staging")


def head_status(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return 200
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.fixture
def fresh(server):
    """A server of its own (so its data dir can be inspected) with one bucket."""
    s3 = server.client()
    s3.create_bucket(Bucket="bad-input")
    return server, s3, "bad-input"


# --- malformed XML --------------------------------------------------------------------

MALFORMED = [
    b"this is not xml",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Wrong>",
    b"",
]


@pytest.mark.parametrize("body", MALFORMED, ids=["text", "truncated", "mismatched-tag", "empty"])
def test_complete_multipart_malformed_xml_is_malformed_xml(fresh, body):
    srv, s3, b = fresh
    uid = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=1, Body=b"part one")
    status, headers, resp = s3raw.request(srv.endpoint, "POST", f"/{b}/mp?uploadId={q(uid)}", body=body,
                                          headers={"Content-Type": "application/xml"})
    assert (status, s3raw.error_code(resp)) == (400, "MalformedXML"), resp
    assert headers.get("x-amz-request-id")
    # Nothing happened: no object, and the upload and its part are still there.
    assert head_status(s3, b, "mp") == 404
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=b, Key="mp", UploadId=uid)["Parts"]] == [1]
    # ...and can still be completed properly.
    etag = s3.list_parts(Bucket=b, Key="mp", UploadId=uid)["Parts"][0]["ETag"]
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == b"part one"


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete><Object><Key>keep-a</Key></Object>",
        b"<Delete><Object><Key>keep-a</Key></Object></Delete",
        b"delete everything",
        b"<Delete><Object><Key>keep-a</Key></Object></Delete><Delete>",
        b"<Delete><Object><Key>keep-a</Key><Key>keep-b</Key></Object></Delete>",
    ],
    ids=["unclosed", "truncated-end-tag", "text", "two-roots", "two-keys-in-one-object"],
)
def test_delete_objects_malformed_xml_is_malformed_xml_and_deletes_nothing(fresh, body):
    srv, s3, b = fresh
    for k in ["keep-a", "keep-b"]:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, headers, resp = s3raw.request(srv.endpoint, "POST", f"/{b}?delete", body=body,
                                          headers={"Content-Type": "application/xml", "Content-MD5": md5})
    assert (status, s3raw.error_code(resp)) == (400, "MalformedXML"), resp
    assert headers.get("x-amz-request-id")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]) == ["keep-a", "keep-b"]


def test_delete_objects_over_1000_keys_is_malformed_xml(fresh):
    srv, s3, b = fresh
    s3.put_object(Bucket=b, Key="k0", Body=b"0")
    objs = [{"Key": f"k{i}"} for i in range(1001)]
    with pytest.raises(ClientError) as ei:
        s3.delete_objects(Bucket=b, Delete={"Objects": objs})
    assert ei.value.response["Error"]["Code"] == "MalformedXML"
    assert head_status(s3, b, "k0") == 200


# --- bodies cut short / not matching --------------------------------------------------


def send_short_put(endpoint, path, declared, sent):
    """PUT `path` declaring Content-Length `declared` (UNSIGNED-PAYLOAD), send only `sent`
    bytes, half-close, and read whatever the server says until it closes. Returns the raw
    response bytes."""
    u = urllib.parse.urlsplit(endpoint)
    host = f"{u.hostname}:{u.port}"
    headers = s3raw.sign("PUT", endpoint + path, {"Host": host, "Content-Length": str(declared)},
                         payload_hash=s3raw.UNSIGNED)
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock = socket.create_connection((u.hostname, u.port), timeout=60)
    try:
        sock.sendall(head.encode() + os.urandom(sent))
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        sock.close()


@pytest.mark.parametrize("declared,sent", [(1000, 10), (4 * MiB, 300 * KiB)], ids=["inline", "staged-blob"])
def test_put_body_shorter_than_content_length_leaves_nothing(fresh, declared, sent):
    srv, s3, b = fresh
    resp = send_short_put(srv.endpoint, f"/{b}/short", declared, sent)
    # The server answers once it sees the body end early (so the upload has been dealt
    # with by the time we look at the data dir).
    status_line = resp.split(b"\r\n", 1)[0]
    assert status_line.split()[1:2] == [b"400"], resp[:500]
    assert s3raw.error_code(resp.split(b"\r\n\r\n", 1)[1]) == "IncompleteBody", resp[:500]
    assert head_status(s3, b, "short") == 404
    assert "Contents" not in s3.list_objects_v2(Bucket=b)
    assert files_under(srv.data_dir / "staging") == []
    assert files_under(srv.data_dir / "blobs") == []
    # The server is still fine.
    s3.put_object(Bucket=b, Key="after", Body=b"ok")
    assert s3.get_object(Bucket=b, Key="after")["Body"].read() == b"ok"


def test_put_payload_not_matching_signed_sha256_is_rejected_and_leaves_nothing(fresh):
    srv, s3, b = fresh
    body = os.urandom(200 * KiB)
    status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{b}/hash", body=body,
                                    payload_hash=hashlib.sha256(b"something else").hexdigest())
    assert (status, s3raw.error_code(resp)) == (400, "XAmzContentSHA256Mismatch"), resp
    assert head_status(s3, b, "hash") == 404
    assert blob_files(srv.data_dir) == []


def test_big_put_with_wrong_crc32_leaves_no_blob(fresh):
    srv, s3, b = fresh
    body = os.urandom(1 * MiB)
    wrong = base64.b64encode(zlib.crc32(b"not the body").to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=b, Key="crc", Body=body, ChecksumCRC32=wrong)
    assert ei.value.response["Error"]["Code"] == "BadDigest"
    assert head_status(s3, b, "crc") == 404
    assert blob_files(srv.data_dir) == []


# --- hostile names --------------------------------------------------------------------


def test_hostile_keys_round_trip_and_stay_inside_data_dir(fresh):
    srv, s3, b = fresh
    marker = "cofferescape" + uuid.uuid4().hex[:8]
    keys = [
        f"../{marker}-1",
        f"../../{marker}-2",
        f"../../../../../../../../tmp/{marker}-3",
        "..",
        ".",
        "./.",
        f"a/../../{marker}-4",
        f"/{marker}-5",
        f"//{marker}-6",
        f"blobs/../../{marker}-7",
        f"staging/../{marker}-8",
        f"..\\..\\{marker}-9",
        f"%2e%2e/%2e%2e/{marker}-10",
        "ctrl-\x01\x02\x1b\x1f\x7f-end",
        "tab\tnewline\ncarriage\rreturn",
        "trailing/",
        "a//b///c",
        "sp ace/+plus/&amp;/?q=1#frag",
        "\u00fcn\u00efc\u00f8d\u00e9/\u65e5\u672c\u8a9e/\U0001f600",
        "\u202eright-to-left-override",
        ("../" * 341) + "x",  # 1024 bytes
        ("\u00e9" * 511) + "xy",  # 1024 bytes, 513 characters
    ]
    assert all(len(k.encode()) <= 1024 for k in keys)
    assert len(keys[-1].encode()) == 1024 and len(keys[-2].encode()) == 1024
    before_top = {p.name for p in srv.data_dir.iterdir()}
    for i, k in enumerate(keys):
        # Some bodies are big enough to become blob files.
        body = k.encode() + (os.urandom(100 * KiB) if i % 3 == 0 else b"")
        s3.put_object(Bucket=b, Key=k, Body=body)
        got = s3.get_object(Bucket=b, Key=k)
        assert got["Body"].read() == body, repr(k)
        assert s3.head_object(Bucket=b, Key=k)["ContentLength"] == len(body)

    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
        listed.extend(o["Key"] for o in page.get("Contents", []))
    assert sorted(listed) == sorted(keys)

    # Nothing was created outside the data dir, or under a name taken from a key.
    root = srv.data_dir.resolve()
    assert {p.name for p in srv.data_dir.iterdir()} == before_top
    for p in srv.data_dir.rglob("*"):
        assert p.resolve().is_relative_to(root), p
        assert marker not in p.name, p
        assert not p.is_symlink(), p
    for d in {root.parent, root.parent.parent, Path("/tmp"), Path("/")}:
        assert not any(marker in n for n in os.listdir(d)), d

    # Deleting them works too, and leaves the bucket empty.
    for k in keys:
        s3.delete_object(Bucket=b, Key=k)
    assert "Contents" not in s3.list_objects_v2(Bucket=b)


# --- clock skew -----------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [-20, 20, -60 * 24])
def test_clock_skew_over_15_minutes_is_request_time_too_skewed(fresh, minutes):
    srv, s3, b = fresh
    when = s3raw.utcnow() + timedelta(minutes=minutes)
    status, headers, resp = s3raw.request(srv.endpoint, "GET", f"/{b}?list-type=2", when=when)
    assert (status, s3raw.error_code(resp)) == (403, "RequestTimeTooSkewed"), resp
    assert headers.get("x-amz-request-id")
    status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{b}/skewed", body=b"late", when=when)
    assert (status, s3raw.error_code(resp)) == (403, "RequestTimeTooSkewed"), resp
    assert head_status(s3, b, "skewed") == 404


def test_clock_skew_within_15_minutes_is_accepted(fresh):
    srv, s3, b = fresh
    for minutes in (-10, 10):
        when = s3raw.utcnow() + timedelta(minutes=minutes)
        status, _, resp = s3raw.request(srv.endpoint, "PUT", f"/{b}/ok{minutes}", body=b"fine", when=when)
        assert status == 200, resp
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]) == ["ok-10", "ok10"]


def test_an_early_error_to_expect_100_continue_closes_the_connection(fresh):
    """botocore sends `Expect: 100-continue` and, answered with a final error, never sends
    the body. Reusing the connection would read the next request as that body (seen as
    an intermittent SignatureDoesNotMatch on the request after an SSE-C error)."""
    server, s3, bucket = fresh
    host, port = server.endpoint.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(
            f"PUT /{bucket}/never HTTP/1.1\r\nHost: {host}:{port}\r\nExpect: 100-continue\r\n"
            "Content-Length: 1\r\n\r\n".encode()
        )
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = c.recv(4096)
            assert chunk, got
            got += chunk
        head = got.split(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 403"), head
        assert b"connection: close" in head, head
        # The server closes; it never reads our next request as the missing body.
        c.sendall(f"GET /{bucket}/never HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        rest = b""
        try:
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        assert b"HTTP/1.1" not in rest.split(b"\r\n\r\n", 1)[-1], rest
    assert head_status(s3, bucket, "never") == 404


@pytest.mark.parametrize("name", ["x", "UPPER", "a..b", "-dash"])
def test_an_invalid_bucket_name_gets_aws_s_message_not_unknown(fresh, name):
    """s3s rejects such names while parsing the path, without a message; clients then
    print "Unknown". AWS says "The specified bucket is not valid."."""
    server, s3, _ = fresh
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket=name)
    err = ei.value.response["Error"]
    assert err["Code"] == "InvalidBucketName", err
    assert err["Message"] == "The specified bucket is not valid.", err
    p = server.aws("s3", "mb", f"s3://{name}", check=False)
    assert p.returncode != 0 and "The specified bucket is not valid." in p.stderr, p.stderr
