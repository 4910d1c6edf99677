"""boto3 against Coffer: listing and paging, presigned URLs and POST, S3 error codes,
copies, attributes, tags, multi-delete, multipart, checksums, response overrides and
virtual-hosted-style requests."""

import base64
import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import Server

MiB = 1024 * 1024


def expect_error(call, code, status):
    """Runs `call`, which must fail with S3 error `code` and HTTP `status`; every error
    response must carry a request id."""
    with pytest.raises(ClientError) as ei:
        call()
    r = ei.value.response
    assert r["Error"]["Code"] == code, r
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    assert r["ResponseMetadata"].get("RequestId"), r
    return r


def b64(b):
    return base64.b64encode(b).decode()


def crc32_b64(data):
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def quoted_md5(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def new_bucket(s3, prefix="b"):
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# --- listing --------------------------------------------------------------------------

NESTED = [f"dir{i % 5}/sub{i % 7}/key{i:05}" for i in range(2480)]
TOP = [
    "top-a", "top-b", "Top-upper", "top+plus", "top space", "top-\u00e9", "top-\uff21",
    "top-\U0001f600", "dir0-dash", "dir0.dot", "dir1", "aaa", "zzz", "~tilde", "0zero",
    "dir2/", "dir3//double", "dir4/sub1", "top!bang", "top(paren)",
]
ALL_KEYS = NESTED + TOP
assert len(ALL_KEYS) == 2500 and len(set(ALL_KEYS)) == 2500


def model(keys, prefix="", delimiter=None, start_after=None):
    """What S3 lists, in order: (name, is_common_prefix). Python orders str by code point,
    which is UTF-8 byte order."""
    out, seen = [], set()
    for k in sorted(keys):
        if not k.startswith(prefix) or (start_after is not None and k <= start_after):
            continue
        if delimiter:
            rest = k[len(prefix):]
            i = rest.find(delimiter)
            if i >= 0:
                cp = prefix + rest[: i + len(delimiter)]
                # A marker equal to a common prefix (what v1's NextMarker is after a
                # prefix) skips that whole prefix.
                if start_after is not None and cp <= start_after:
                    continue
                if cp not in seen:
                    seen.add(cp)
                    out.append((cp, True))
                continue
        out.append((k, False))
    return out


@pytest.fixture(scope="module")
def listing(shared_server):
    s3 = shared_server.client(max_pool_connections=16)
    b = new_bucket(s3, "listing")

    def put(k):
        s3.put_object(Bucket=b, Key=k, Body=k.encode())

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(put, ALL_KEYS))
    return s3, b


def page_entries(page):
    keys = [o["Key"] for o in page.get("Contents", [])]
    cps = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == sorted(keys), "Contents out of order within a page"
    assert cps == sorted(cps), "CommonPrefixes out of order within a page"
    return sorted([(k, False) for k in keys] + [(p, True) for p in cps])


def list_v2_all(s3, bucket, max_keys, **kw):
    pages, token = [], None
    while True:
        args = dict(Bucket=bucket, MaxKeys=max_keys, **kw)
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        token = page["NextContinuationToken"]
        assert token
        assert len(pages) <= 3000, "listing does not terminate"


@pytest.mark.parametrize(
    "prefix,delimiter,max_keys",
    [
        ("", "/", 2),
        ("", "/", 100),
        ("dir2/", "/", 3),
        ("dir3/sub4/", "/", 30),
        ("dir3/sub4/", "/", 1000),
        ("dir", "/", 4),
        ("", None, 1000),
        ("dir1/", None, 100),
        ("top", None, 3),
        ("nothing-here/", "/", 10),
    ],
)
def test_list_v2_pages_match_model(listing, prefix, delimiter, max_keys):
    s3, b = listing
    kw = {"Prefix": prefix}
    if delimiter:
        kw["Delimiter"] = delimiter
    pages = list_v2_all(s3, b, max_keys, **kw)
    got = []
    for i, page in enumerate(pages):
        entries = page_entries(page)
        assert page["KeyCount"] == len(entries)
        assert len(entries) <= max_keys
        assert page["MaxKeys"] == max_keys
        assert page["Prefix"] == prefix
        final = i == len(pages) - 1
        assert page["IsTruncated"] == (not final)
        if not final:
            assert entries, "a truncated page must not be empty"
        got.extend(entries)
    want = model(ALL_KEYS, prefix, delimiter)
    assert got == want
    assert len({name for name, _ in got}) == len(got), "an entry was listed twice"


def test_list_v2_paginator_without_delimiter_returns_all_keys_sorted(listing):
    s3, b = listing
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 700}):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    assert len(keys) == 2500
    assert keys == sorted(ALL_KEYS)
    # Sizes are what was stored (each body is its key).
    page = s3.list_objects_v2(Bucket=b, Prefix="dir4/sub6/", MaxKeys=5)
    for o in page["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"] == quoted_md5(o["Key"].encode())


def test_list_v1_marker_paging_matches_model(listing):
    s3, b = listing
    # Without a delimiter S3 gives no NextMarker: the last key is the next marker.
    keys, marker, pages = [], "", 0
    while True:
        page = s3.list_objects(Bucket=b, MaxKeys=1000, Marker=marker)
        pages += 1
        batch = [o["Key"] for o in page.get("Contents", [])]
        keys.extend(batch)
        if not page["IsTruncated"]:
            break
        marker = batch[-1]
    assert pages == 3
    assert keys == sorted(ALL_KEYS)

    # With a delimiter, NextMarker carries on past common prefixes.
    got, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=b, MaxKeys=2, Delimiter="/", Marker=marker)
        got.extend(page_entries(page))
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]
        assert marker
        assert len(got) < 100
    assert got == model(ALL_KEYS, "", "/")


def test_list_v2_start_after(listing):
    s3, b = listing
    after = "dir2/sub0/key01000"
    pages = list_v2_all(s3, b, 1000, StartAfter=after)
    got = [e for p in pages for e in page_entries(p)]
    assert got == model(ALL_KEYS, start_after=after)
    assert got[0][0] > after

    pages = list_v2_all(s3, b, 5, StartAfter="dir1/sub2/~", Delimiter="/", Prefix="dir1/")
    got = [e for p in pages for e in page_entries(p)]
    assert got == [("dir1/sub3/", True), ("dir1/sub4/", True), ("dir1/sub5/", True), ("dir1/sub6/", True)]
    assert got == model(ALL_KEYS, "dir1/", "/", start_after="dir1/sub2/~")

    pages = list_v2_all(s3, b, 5, StartAfter="dir1/sub3/", Delimiter="/", Prefix="dir1/")
    got = [e for p in pages for e in page_entries(p)]
    assert got == [("dir1/sub4/", True), ("dir1/sub5/", True), ("dir1/sub6/", True)]


def test_list_encoding_type_url_encodes_keys(s3, bucket):
    keys = ["a b/c d.txt", "plus+sign", "caf\u00e9/\u65e5\u672c", "x%y", "amp&eq=q?"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    # Asked for explicitly, botocore hands back the raw (encoded) form.
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert r["EncodingType"] == "url"
    raw = [o["Key"] for o in r["Contents"]]
    for k in raw:
        assert k.isascii() and " " not in k, raw
    assert sorted(urllib.parse.unquote_plus(k) for k in raw) == sorted(keys)
    assert "plus%2Bsign" in raw

    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Delimiter="/")
    cps = sorted(urllib.parse.unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"])
    assert cps == ["a b/", "caf\u00e9/"]

    # Default boto3 calls set EncodingType=url themselves and decode: keys round-trip.
    r = s3.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in r["Contents"]) == sorted(keys)
    r = s3.list_objects(Bucket=bucket)
    assert sorted(o["Key"] for o in r["Contents"]) == sorted(keys)


# --- presigned URLs -------------------------------------------------------------------


def http_call(req):
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def s3v4(shared_server):
    """boto3 presigns with SigV2 unless told otherwise; these tests are about SigV4."""
    return shared_server.client(signature_version="s3v4")


def test_presigned_put_then_get_roundtrip(s3v4, bucket):
    s3 = s3v4
    data = os.urandom(50_000)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/x.bin"}, ExpiresIn=300)
    status, _, _ = http_call(urllib.request.Request(put_url, data=data, method="PUT"))
    assert status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/x.bin"}, ExpiresIn=300)
    status, _, body = http_call(urllib.request.Request(get_url))
    assert status == 200
    assert body == data
    assert s3.head_object(Bucket=bucket, Key="pre/x.bin")["ContentLength"] == len(data)


def test_presigned_url_expired_is_access_denied(s3v4, bucket):
    s3 = s3v4
    s3.put_object(Bucket=bucket, Key="old", Body=b"old")
    past = s3raw.utcnow() - timedelta(hours=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "old"}, ExpiresIn=60)
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    status, headers, body = http_call(urllib.request.Request(url))
    assert status == 403, body
    assert s3raw.error_code(body) == "AccessDenied", body
    assert headers.get("x-amz-request-id")


def test_presigned_url_tampered_signature_is_signature_does_not_match(s3v4, bucket):
    s3 = s3v4
    s3.put_object(Bucket=bucket, Key="t", Body=b"t")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "t"}, ExpiresIn=300)
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query)
    assert "X-Amz-Signature" in dict(q)
    q = [(k, (v[:-1] + ("0" if v[-1] != "0" else "1")) if k == "X-Amz-Signature" else v) for k, v in q]
    bad = urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
    status, headers, body = http_call(urllib.request.Request(bad))
    assert status == 403, body
    assert s3raw.error_code(body) == "SignatureDoesNotMatch", body
    assert headers.get("x-amz-request-id")

    # A presigned PUT whose key was changed after signing writes nothing.
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "signed-key"}, ExpiresIn=300)
    moved = put_url.replace("/signed-key?", "/other-key?")
    status, _, body = http_call(urllib.request.Request(moved, data=b"x", method="PUT"))
    assert status == 403 and s3raw.error_code(body) == "SignatureDoesNotMatch", body
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="other-key"), "404", 404)


# --- errors ---------------------------------------------------------------------------


def test_wrong_secret_is_signature_does_not_match(shared_server):
    bad = shared_server.client(secret_key="not-the-secret-0000000000000000000000000")
    expect_error(bad.list_buckets, "SignatureDoesNotMatch", 403)
    expect_error(lambda: bad.create_bucket(Bucket="never-made-1"), "SignatureDoesNotMatch", 403)
    names = [x["Name"] for x in shared_server.client().list_buckets()["Buckets"]]
    assert "never-made-1" not in names


def test_unknown_access_key_is_invalid_access_key_id(shared_server):
    bad = shared_server.client(access_key="AKIANOSUCHKEY0000000")
    expect_error(bad.list_buckets, "InvalidAccessKeyId", 403)


def test_missing_bucket_and_key_are_404(s3, bucket):
    expect_error(lambda: s3.get_object(Bucket="no-such-bucket-xyz", Key="k"), "NoSuchBucket", 404)
    expect_error(lambda: s3.list_objects_v2(Bucket="no-such-bucket-xyz"), "NoSuchBucket", 404)
    expect_error(lambda: s3.put_object(Bucket="no-such-bucket-xyz", Key="k", Body=b"x"), "NoSuchBucket", 404)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="missing"), "NoSuchKey", 404)
    # HEAD has no body: botocore reports the status as the code; the request id is a header.
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="missing"), "404", 404)
    expect_error(lambda: s3.head_bucket(Bucket="no-such-bucket-xyz"), "404", 404)


def test_delete_non_empty_bucket_is_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_error(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    expect_error(lambda: s3.head_bucket(Bucket=bucket), "404", 404)


def test_unsatisfiable_range_is_invalid_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ten", Body=b"0123456789")
    r = expect_error(lambda: s3.get_object(Bucket=bucket, Key="ten", Range="bytes=1000-"), "InvalidRange", 416)
    assert r["ResponseMetadata"]["HTTPHeaders"].get("content-range") in (None, "bytes */10")
    got = s3.get_object(Bucket=bucket, Key="ten", Range="bytes=8-1000")
    assert got["Body"].read() == b"89"
    assert got["ContentRange"] == "bytes 8-9/10"


def test_conditional_get_and_put(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"'),
                 "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    r = expect_error(lambda: s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag), "304", 304)
    assert r["ResponseMetadata"]["HTTPHeaders"].get("etag") == etag
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*"), "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v1"
    s3.put_object(Bucket=bucket, Key="new", Body=b"n", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"n"


def test_recreating_your_own_bucket_succeeds_in_us_east_1_only(s3, bucket, data_dir):
    """AWS: re-creating a bucket you own answers 200 in us-east-1 (legacy behaviour) and
    409 BucketAlreadyOwnedByYou in every other region. Another owner's name is 409
    BucketAlreadyExists everywhere (tests/test_tenants.py)."""
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k")
    assert s3.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"k", "and changes nothing"
    import boto3
    import botocore.config

    from conftest import ACCESS_KEY, SECRET_KEY

    west = Server(data_dir, extra_args=["--region", "eu-west-1"]).start()
    try:
        c = boto3.client("s3", endpoint_url=west.endpoint, region_name="eu-west-1",
                         aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                         config=botocore.config.Config(s3={"addressing_style": "path"},
                                                       retries={"max_attempts": 1}))
        cfg = {"LocationConstraint": "eu-west-1"}
        c.create_bucket(Bucket="mine", CreateBucketConfiguration=cfg)
        expect_error(lambda: c.create_bucket(Bucket="mine", CreateBucketConfiguration=cfg),
                     "BucketAlreadyOwnedByYou", 409)
    finally:
        west.stop()


@pytest.mark.parametrize("name", ["Bad_Name", "ab", "-leading-dash", "a..b", "192.168.1.1", "x" * 64])
def test_bad_bucket_name_is_invalid_bucket_name(s3, name):
    expect_error(lambda: s3.create_bucket(Bucket=name), "InvalidBucketName", 400)


def test_key_over_1024_bytes_is_key_too_long(s3, bucket):
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x"), "KeyTooLongError", 400)
    # Multi-byte: 1025 bytes in 513 characters.
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="\u00e9" * 512 + "k", Body=b"x"), "KeyTooLongError", 400)
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k" * 1024]


# --- copy, attributes, tags, delete, versions, buckets --------------------------------


def test_copy_object_same_and_other_bucket_with_metadata_directives(s3, bucket):
    other = new_bucket(s3, "copydst")
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"})

    s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "src"})
    h = s3.head_object(Bucket=bucket, Key="same")
    assert (h["ContentType"], h["Metadata"], h["ETag"]) == ("text/plain", {"a": "1"}, quoted_md5(b"copy me"))

    r = s3.copy_object(
        Bucket=other, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="application/x-new",
    )
    assert r["CopyObjectResult"]["ETag"] == quoted_md5(b"copy me")
    h = s3.head_object(Bucket=other, Key="replaced")
    assert (h["ContentType"], h["Metadata"]) == ("application/x-new", {"b": "2"})
    assert s3.get_object(Bucket=other, Key="replaced")["Body"].read() == b"copy me"

    # COPY ignores metadata given with the request.
    s3.copy_object(Bucket=other, Key="copied", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="COPY", Metadata={"ignored": "yes"})
    assert s3.head_object(Bucket=other, Key="copied")["Metadata"] == {"a": "1"}


def test_copy_object_source_if_match_mismatch_is_precondition_failed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"s")
    expect_error(
        lambda: s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                               CopySourceIfMatch='"ffffffffffffffffffffffffffffffff"'),
        "PreconditionFailed", 412,
    )
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="dst"), "404", 404)


def test_copy_object_onto_itself_without_changes_is_invalid_request(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"s", Metadata={"m": "1"})
    expect_error(lambda: s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"}),
                 "InvalidRequest", 400)
    # With REPLACE it is allowed, and replaces the metadata.
    s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                   MetadataDirective="REPLACE", Metadata={"m": "2"})
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"m": "2"}


def test_copy_from_missing_source_is_no_such_key(s3, bucket):
    expect_error(lambda: s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "nope"}),
                 "NoSuchKey", 404)


def test_object_tagging_put_get_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    tags = [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "storage"}]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": tags})
    got = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == tags
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    expect_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"), "NoSuchKey", 404)
    expect_error(
        lambda: s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}),
        "InvalidTag", 400,
    )


def test_delete_objects_verbose_and_quiet(s3, bucket):
    for k in ["a", "b", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing-1"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b", "missing-1"]
    assert not r.get("Errors")

    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}, {"Key": "missing-2"}], "Quiet": True})
    assert not r.get("Deleted")
    assert not r.get("Errors")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d"]
    expect_error(lambda: s3.delete_objects(Bucket="no-such-bucket-xyz", Delete={"Objects": [{"Key": "a"}]}),
                 "NoSuchBucket", 404)


def test_versions_versioning_location_head_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="v", Body=b"v")
    r = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in r["Versions"]] == [("v", "null", True)]
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") in (None, "")
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"v"


def test_list_buckets_owner_is_present_and_stable(s3, bucket):
    a = s3.list_buckets()
    b = s3.list_buckets()
    assert a["Owner"]["ID"] and a["Owner"]["DisplayName"]
    assert a["Owner"] == b["Owner"]
    assert bucket in [x["Name"] for x in a["Buckets"]]
    assert all("CreationDate" in x for x in a["Buckets"])


# --- multipart ------------------------------------------------------------------------


def multipart_etag(parts):
    return '"' + hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f'-{len(parts)}"'


def upload_parts(s3, bucket, key, parts):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=p)
        assert r["ETag"] == quoted_md5(p)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return uid, done


@pytest.fixture(scope="module")
def three_parts():
    return [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]


def test_multipart_complete_etag_parts_and_part_number_get(s3, bucket, three_parts):
    parts = three_parts
    uid, done = upload_parts(s3, bucket, "mp", parts)

    ups = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("mp", uid)]
    lp = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == [
        (n, len(p), quoted_md5(p)) for n, p in enumerate(parts, 1)
    ]
    # The object does not exist until completed.
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="mp"), "404", 404)

    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": done})
    assert r["ETag"] == multipart_etag(parts)
    assert r["ETag"].endswith('-3"')
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    whole = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["ETag"] == multipart_etag(parts)
    assert got["Body"].read() == whole

    p2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert p2["PartsCount"] == 3
    assert p2["ContentLength"] == len(parts[1])
    assert p2["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{len(whole)}"
    assert p2["Body"].read() == parts[1]
    assert s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)["ContentLength"] == 1234


def test_get_object_attributes_multipart(s3, bucket, three_parts):
    parts = three_parts
    uid, done = upload_parts(s3, bucket, "mp", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    attrs = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "ObjectParts"])
    # AWS writes this ETag without quotes (unlike every other ETag).
    assert attrs["ETag"] == multipart_etag(parts).strip('"')
    assert attrs["ObjectSize"] == len(whole)
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["ObjectParts"]["TotalPartsCount"] == 3
    if attrs["ObjectParts"].get("Parts"):
        assert [(p["PartNumber"], p["Size"]) for p in attrs["ObjectParts"]["Parts"]] == [
            (n, len(p)) for n, p in enumerate(parts, 1)
        ]


def test_get_object_attributes_single_part(s3, bucket):
    s3.put_object(Bucket=bucket, Key="one", Body=b"12345", StorageClass="STANDARD_IA")
    a = s3.get_object_attributes(Bucket=bucket, Key="one", ObjectAttributes=["ETag", "ObjectSize", "StorageClass"])
    assert a["ETag"] == hashlib.md5(b"12345").hexdigest()
    assert a["ObjectSize"] == 5
    assert a["StorageClass"] == "STANDARD_IA"
    assert "ObjectParts" not in a


def test_multipart_complete_with_wrong_etag_is_invalid_part(s3, bucket):
    uid, done = upload_parts(s3, bucket, "bad-etag", [os.urandom(5 * MiB), b"tail"])
    done[0]["ETag"] = '"00000000000000000000000000000000"'
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="bad-etag", UploadId=uid,
                                                      MultipartUpload={"Parts": done}), "InvalidPart", 400)
    # Part 7 was never uploaded.
    missing = [{"PartNumber": 1, "ETag": '"' + hashlib.md5(b"").hexdigest() + '"'}, {"PartNumber": 7, "ETag": done[1]["ETag"]}]
    missing[0]["ETag"] = s3.list_parts(Bucket=bucket, Key="bad-etag", UploadId=uid)["Parts"][0]["ETag"]
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="bad-etag", UploadId=uid,
                                                      MultipartUpload={"Parts": missing}), "InvalidPart", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="bad-etag"), "404", 404)
    # The upload survives a failed complete.
    assert len(s3.list_parts(Bucket=bucket, Key="bad-etag", UploadId=uid)["Parts"]) == 2


@pytest.mark.parametrize("key", ["dir/a b+c.bin", "ünïcödé/ключ €.bin", "ü" * 400 + "%2F?&="],
                         ids=["space-and-plus", "non-ascii", "longer-than-1024-encoded"])
def test_multipart_keys_that_need_encoding_complete(s3, bucket, key):
    """CompleteMultipartUpload reads its key from the percent-encoded path, as every
    operation does (a key with spaces, `+`, non-ASCII, or one whose encoding is longer
    than 1,024 characters)."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"only part")
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"only part"


def test_multipart_parts_out_of_order_is_invalid_part_order(s3, bucket):
    uid, done = upload_parts(s3, bucket, "order", [os.urandom(5 * MiB), b"tail"])
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="order", UploadId=uid,
                                                      MultipartUpload={"Parts": list(reversed(done))}),
                 "InvalidPartOrder", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="order"), "404", 404)


def test_multipart_small_non_last_part_is_entity_too_small(s3, bucket):
    uid, done = upload_parts(s3, bucket, "small", [b"x" * 1000, b"y" * 1000])
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid,
                                                      MultipartUpload={"Parts": done}), "EntityTooSmall", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="small"), "404", 404)
    # A single small part is fine: it is the last one.
    r = s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={"Parts": done[1:]})
    assert r["ETag"] == '"' + hashlib.md5(hashlib.md5(b"y" * 1000).digest()).hexdigest() + '-1"'


def test_multipart_abort_then_no_such_upload(s3, bucket):
    uid, done = upload_parts(s3, bucket, "ab", [b"abc"])
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    expect_error(lambda: s3.list_parts(Bucket=bucket, Key="ab", UploadId=uid), "NoSuchUpload", 404)
    expect_error(lambda: s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=2, Body=b"x"),
                 "NoSuchUpload", 404)
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid,
                                                      MultipartUpload={"Parts": done}), "NoSuchUpload", 404)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="ab"), "404", 404)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_upload_part_copy_with_range(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert r1["CopyPartResult"]["ETag"] == quoted_md5(src[: 5 * MiB])
    r2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes={6 * MiB - 100}-{6 * MiB - 1}")
    parts = [{"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src[: 5 * MiB] + src[-100:]


# --- checksums ------------------------------------------------------------------------


def test_put_sha256_checksum_is_returned_on_get(s3, bucket):
    data = os.urandom(100_000)
    want = b64(hashlib.sha256(data).digest())
    r = s3.put_object(Bucket=bucket, Key="sha", Body=data, ChecksumAlgorithm="SHA256")
    assert r["ChecksumSHA256"] == want
    got = s3.get_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == want
    assert got["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")["ChecksumSHA256"] == want


def test_put_with_wrong_crc32_is_bad_digest_and_creates_nothing(s3, bucket):
    data = b"the real body"
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="crc", Body=data, ChecksumCRC32=crc32_b64(b"another body")),
                 "BadDigest", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="crc"), "404", 404)
    r = s3.put_object(Bucket=bucket, Key="crc", Body=data, ChecksumCRC32=crc32_b64(data))
    assert r["ChecksumCRC32"] == crc32_b64(data)


def test_put_with_wrong_content_md5_is_bad_digest_and_creates_nothing(s3, bucket):
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="md5", Body=b"body", ContentMD5=b64(hashlib.md5(b"other").digest())),
                 "BadDigest", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="md5"), "404", 404)
    r = s3.put_object(Bucket=bucket, Key="md5", Body=b"body", ContentMD5=b64(hashlib.md5(b"body").digest()))
    assert r["ETag"] == quoted_md5(b"body")


def test_get_object_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o.bin", Body=b"o", ContentType="application/octet-stream")
    r = s3.get_object(Bucket=bucket, Key="o.bin", ResponseContentType="text/x-override",
                      ResponseContentDisposition='attachment; filename="renamed.txt"',
                      ResponseCacheControl="no-store")
    assert r["ContentType"] == "text/x-override"
    assert r["ContentDisposition"] == 'attachment; filename="renamed.txt"'
    assert r["CacheControl"] == "no-store"
    assert r["Body"].read() == b"o"
    # The stored headers are unchanged.
    assert s3.head_object(Bucket=bucket, Key="o.bin")["ContentType"] == "application/octet-stream"


# --- POST object (browser upload) -----------------------------------------------------


def form_body(fields, data, filename="upload.bin"):
    boundary = "----coffer" + uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
    )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def post_form(url, fields, data):
    body, ctype = form_body(fields, data)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("POST", u.path, body=body, headers={"Content-Type": ctype})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_post_object_success_action_status_201(s3, bucket):
    post = s3.generate_presigned_post(
        bucket, "forms/upload.txt", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["content-length-range", 1, 1000]], ExpiresIn=300,
    )
    data = b"uploaded from a browser form"
    status, headers, body = post_form(post["url"], post["fields"], data)
    assert status == 201, body
    root = ET.fromstring(body)
    assert root.tag.endswith("PostResponse"), body
    fields = {el.tag.split("}")[-1]: el.text for el in root}
    assert fields["Key"] == "forms/upload.txt"
    assert fields["Bucket"] == bucket
    assert s3.get_object(Bucket=bucket, Key="forms/upload.txt")["Body"].read() == data
    # AWS quotes the ETag in a PostResponse, as in the ETag header.
    assert fields["ETag"] == quoted_md5(data)


def test_post_object_violating_content_length_range_is_rejected(s3, bucket):
    post = s3.generate_presigned_post(
        bucket, "forms/too-big.txt", Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["content-length-range", 1, 1000]], ExpiresIn=300,
    )
    status, headers, body = post_form(post["url"], post["fields"], b"z" * 2000)
    assert 400 <= status < 500, (status, body)
    assert (status, s3raw.error_code(body)) == (400, "EntityTooLarge"), body
    assert headers.get("x-amz-request-id")
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="forms/too-big.txt"), "404", 404)


def test_post_object_policy_tampering_is_rejected(s3, bucket):
    post = s3.generate_presigned_post(bucket, "forms/fixed.txt", ExpiresIn=300)
    fields = dict(post["fields"], key="forms/other.txt")
    status, _, body = post_form(post["url"], fields, b"x")
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="forms/other.txt"), "404", 404)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="forms/fixed.txt"), "404", 404)
    # AWS: 403 AccessDenied, "Invalid according to Policy: Policy Condition failed".
    assert (status, s3raw.error_code(body)) == (403, "AccessDenied"), body


def test_post_object_success_action_redirect_is_303(s3, bucket):
    target = "http://example.com/done"
    post = s3.generate_presigned_post(
        bucket, "forms/redir.txt", Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}], ExpiresIn=300,
    )
    data = b"redirect me"
    status, headers, body = post_form(post["url"], post["fields"], data)
    assert status == 303, (status, body)
    loc = urllib.parse.urlsplit(headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == target
    q = urllib.parse.parse_qs(loc.query)
    assert q["bucket"] == [bucket]
    assert q["key"] == ["forms/redir.txt"]
    assert q["etag"][0].strip('"') == hashlib.md5(data).hexdigest()
    assert s3.get_object(Bucket=bucket, Key="forms/redir.txt")["Body"].read() == data


# --- virtual-hosted style -------------------------------------------------------------


def test_virtual_hosted_style_put_and_get(data_dir):
    srv = Server(data_dir, extra_args=["--domain", "localhost"]).start()
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="vhost-bucket")
        s3.create_bucket(Bucket="decoy")
        port = urllib.parse.urlsplit(srv.endpoint).port
        host = f"vhost-bucket.localhost:{port}"
        data = b"addressed by host name"
        status, headers, body = s3raw.request(srv.endpoint, "PUT", "/dir/vh.txt", body=data, host=host,
                                              headers={"Content-Type": "text/plain"})
        assert status == 200, body
        assert headers["etag"] == quoted_md5(data)
        status, _, body = s3raw.request(srv.endpoint, "GET", "/dir/vh.txt", host=host)
        assert status == 200 and body == data

        # It landed in the bucket named by the host, and nowhere else.
        assert s3.get_object(Bucket="vhost-bucket", Key="dir/vh.txt")["Body"].read() == data
        assert "Contents" not in s3.list_objects_v2(Bucket="decoy")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert sorted(names) == ["decoy", "vhost-bucket"]

        # Listing the bucket by host name.
        status, _, body = s3raw.request(srv.endpoint, "GET", "/?list-type=2", host=host)
        assert status == 200, body
        assert b"<Key>dir/vh.txt</Key>" in body
    finally:
        srv.stop()


def test_a_completion_repeated_after_it_succeeded_answers_the_same(s3, bucket):
    """AWS answers a CompleteMultipartUpload repeated after it succeeded with 200 and the
    same ETag (clients retry completions whose answer they lost), not NoSuchUpload."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    p = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"part")
    parts = {"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts)
    assert again["ETag"] == first["ETag"] and again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part"
    # Once the key holds something else, the upload is gone for good.
    s3.put_object(Bucket=bucket, Key="mp", Body=b"other")
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts),
                 "NoSuchUpload", 404)
    # An upload id that never completed is unknown, as before.
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId="0" * 32,
                                                      MultipartUpload=parts), "NoSuchUpload", 404)


def test_stored_content_encoding_drops_aws_chunked(s3, bucket, shared_server):
    """`aws-chunked` describes the request's framing, not the object: S3 stores
    `gzip,aws-chunked` as `gzip`, and a lone `aws-chunked` as no encoding."""
    import s3raw

    for sent, kept in (("gzip,aws-chunked", "gzip"), ("aws-chunked", None), ("br", "br")):
        key = f"enc-{sent}"
        status, _, data = s3raw.request(shared_server.endpoint, "PUT", f"/{bucket}/{key}", body=b"x",
                                        headers={"Content-Encoding": sent})
        assert status == 200, data
        assert s3.head_object(Bucket=bucket, Key=key).get("ContentEncoding") == kept, sent


def test_max_keys_zero_is_an_empty_complete_page(s3, bucket):
    """max-keys=0 lists nothing and is not truncated, with nothing to go on from, in every
    listing (AWS; LocalStack and versitygw agree)."""
    for k in ("a", "b/c"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    v2 = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert (v2["KeyCount"], v2["IsTruncated"], "Contents" in v2, "NextContinuationToken" in v2) == (0, False, False, False)
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=0, Delimiter="/")
    assert (v1["IsTruncated"], "Contents" in v1, "CommonPrefixes" in v1, "NextMarker" in v1) == (False, False, False, False)
    vs = s3.list_object_versions(Bucket=bucket, MaxKeys=0)
    assert (vs["IsTruncated"], "Versions" in vs, "NextKeyMarker" in vs) == (False, False, False)
