"""S3 bucket versioning with the stock aws CLI and boto3: the versioning states (never
enabled, Enabled, Suspended), version ids on writes, reads and HEADs of a given version,
delete markers, the `null` version, ListObjectVersions (prefix, delimiter, paging),
DeleteObjects, CopyObject from a version, multipart uploads, per-version tags, SSE-KMS per
version, and DeleteBucket.

Where the AWS documentation is silent the expectations follow responses recorded against
real S3 by LocalStack's AWS-validated snapshot tests (tests/aws/services/s3/*.snapshot.json
in localstack/localstack); each such place says so.

These expectations were sanity-checked against moto's server mode (5.2.1). Where moto
differs from AWS the test follows AWS and a "moto:" comment says what moto does instead.
"""

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

MiB = 1024 * 1024

# RFC 3986 unreserved characters: a version id needs no escaping in a query string.
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def srv():
    """The shared server of this module; each test makes its own buckets."""
    with tempfile.TemporaryDirectory(prefix="coffer-versioning-") as d:
        s = Server(d).start()
        yield s
        s.stop()


@pytest.fixture
def s3(srv):
    return srv.client("s3")


def unique(prefix):
    """A bucket name of its own: lowercase, unique within and across runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_bucket(s3, prefix, status=None):
    """A fresh bucket; with `status` ("Enabled"/"Suspended") its versioning is set."""
    b = unique(prefix)
    s3.create_bucket(Bucket=b)
    if status:
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": status})
    return b


def expect_error(call, code, status):
    """Runs `call`, which must fail with S3 error `code` and HTTP `status`."""
    with pytest.raises(ClientError) as ei:
        call()
    r = ei.value.response
    assert r["Error"]["Code"] == code, r
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    return r


def headers(resp):
    """The raw (lower-cased) response headers of a boto3 response or error response."""
    return resp["ResponseMetadata"]["HTTPHeaders"]


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def versions_of(s3, bucket, key=None):
    """One unpaged ListObjectVersions: ([(Key, VersionId, IsLatest)] of Versions, same of
    DeleteMarkers), limited to `key` if given."""
    r = s3.list_object_versions(Bucket=bucket, **({"Prefix": key} if key else {}))
    assert not r["IsTruncated"], r
    v = [(x["Key"], x["VersionId"], x["IsLatest"]) for x in r.get("Versions", []) if key is None or x["Key"] == key]
    d = [(x["Key"], x["VersionId"], x["IsLatest"]) for x in r.get("DeleteMarkers", []) if key is None or x["Key"] == key]
    return v, d


def assert_version_id(vid):
    assert isinstance(vid, str) and vid, vid
    assert vid != "null", vid
    assert URL_SAFE.fullmatch(vid), f"version id is not URL-safe ASCII: {vid!r}"
    assert len(vid) <= 1024, vid


def content_md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- 1. the aws CLI round trip ------------------------------------------------------------


def test_cli_round_trip_versions_delete_marker_and_undelete(srv, tmp_path):
    """The aws CLI walk through versioning: enable it; three PUTs of one key make three
    versions, listed newest first with exactly one IsLatest; each version reads back its own
    bytes; a DELETE without a version id answers DeleteMarker=true with the marker's
    VersionId and hides the key (GET 404 NoSuchKey, HEAD 404); deleting the marker by its
    version id brings the newest version back."""
    b = unique("cli-ver")
    srv.aws("s3api", "create-bucket", "--bucket", b)
    srv.aws("s3api", "put-bucket-versioning", "--bucket", b, "--versioning-configuration", "Status=Enabled")
    got = srv.aws("s3api", "get-bucket-versioning", "--bucket", b, expect_json=True)
    assert got.get("Status") == "Enabled", got

    bodies = [f"body number {i} {uuid.uuid4().hex}\n".encode() * (i + 1) for i in range(3)]
    ids = []
    for i, data in enumerate(bodies):
        f = tmp_path / f"in{i}.txt"
        f.write_bytes(data)
        put = srv.aws("s3api", "put-object", "--bucket", b, "--key", "doc.txt", "--body", str(f), expect_json=True)
        assert_version_id(put.get("VersionId"))
        ids.append(put["VersionId"])
    assert len(set(ids)) == 3, ids

    listed = srv.aws("s3api", "list-object-versions", "--bucket", b, expect_json=True)
    versions = listed["Versions"]
    assert [v["VersionId"] for v in versions] == ids[::-1], listed
    assert all(v["Key"] == "doc.txt" for v in versions), listed
    assert [v["IsLatest"] for v in versions] == [True, False, False], listed
    assert [v["Size"] for v in versions] == [len(x) for x in bodies[::-1]], listed
    assert not listed.get("DeleteMarkers"), listed

    for i, vid in enumerate(ids):
        out = tmp_path / f"out{i}.txt"
        got = srv.aws(
            "s3api", "get-object", "--bucket", b, "--key", "doc.txt", "--version-id", vid, str(out), expect_json=True
        )
        assert got["VersionId"] == vid, got
        assert out.read_bytes() == bodies[i], i

    deleted = srv.aws("s3api", "delete-object", "--bucket", b, "--key", "doc.txt", expect_json=True)
    assert deleted.get("DeleteMarker") is True, deleted
    marker = deleted.get("VersionId")
    assert_version_id(marker)
    assert marker not in ids

    p = srv.aws("s3api", "get-object", "--bucket", b, "--key", "doc.txt", str(tmp_path / "gone"), check=False)
    assert p.returncode != 0
    assert "NoSuchKey" in p.stderr, p.stderr
    p = srv.aws("s3api", "head-object", "--bucket", b, "--key", "doc.txt", check=False)
    assert p.returncode != 0
    assert "(404)" in p.stderr, p.stderr

    listed = srv.aws("s3api", "list-object-versions", "--bucket", b, expect_json=True)
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(marker, True)], listed
    assert [v["IsLatest"] for v in listed["Versions"]] == [False, False, False], listed

    undeleted = srv.aws(
        "s3api", "delete-object", "--bucket", b, "--key", "doc.txt", "--version-id", marker, expect_json=True
    )
    # Deleting a delete marker by id: DeleteMarker=true and the marker's id (AWS
    # DeleteObject: x-amz-delete-marker says whether the deleted version was a marker;
    # LocalStack's AWS-validated test_delete_object_versioned). moto: omits DeleteMarker.
    assert undeleted.get("DeleteMarker") is True, undeleted
    assert undeleted.get("VersionId") == marker, undeleted

    out = tmp_path / "back.txt"
    got = srv.aws("s3api", "get-object", "--bucket", b, "--key", "doc.txt", str(out), expect_json=True)
    assert out.read_bytes() == bodies[2]
    assert got["VersionId"] == ids[2], got
    head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "doc.txt", expect_json=True)
    assert head["VersionId"] == ids[2], head
    listed = srv.aws("s3api", "list-object-versions", "--bucket", b, expect_json=True)
    assert not listed.get("DeleteMarkers"), listed
    assert [v["VersionId"] for v in listed["Versions"]] == ids[::-1], listed


# --- 2. the versioning configuration ------------------------------------------------------


def test_get_bucket_versioning_states(s3):
    """A bucket that was never versioned answers GetBucketVersioning with no Status (and no
    MFADelete); Enabled then Suspended read back as set. Suspended can also be set on a
    never-versioned bucket (AWS accepts it: LocalStack's AWS-validated
    test_bucket_versioning_crud)."""
    b = new_bucket(s3, "ver-states")
    got = s3.get_bucket_versioning(Bucket=b)
    assert "Status" not in got and "MFADelete" not in got, got

    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled"
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Suspended"
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled"

    fresh = new_bucket(s3, "ver-susp-first")
    s3.put_bucket_versioning(Bucket=fresh, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=fresh).get("Status") == "Suspended"

    missing = unique("ver-missing")
    expect_error(lambda: s3.get_bucket_versioning(Bucket=missing), "NoSuchBucket", 404)
    expect_error(
        lambda: s3.put_bucket_versioning(Bucket=missing, VersioningConfiguration={"Status": "Enabled"}),
        "NoSuchBucket",
        404,
    )


def test_put_bucket_versioning_mfa_delete_is_refused(s3):
    """MFADelete=Enabled needs the x-amz-mfa header (serial and code of the root user's MFA
    device, over HTTPS; AWS user guide, "Configuring MFA delete"). Without it the request is
    refused; the exact code is not pinned (any 4xx, or 501 for a server without MFA
    support). The versioning state is left as it was."""
    # moto: accepts MFADelete=Enabled without x-amz-mfa.
    for prior in (None, "Enabled"):
        b = new_bucket(s3, "ver-mfa", prior)
        with pytest.raises(ClientError) as ei:
            s3.put_bucket_versioning(
                Bucket=b, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}
            )
        status = ei.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500 or status == 501, ei.value.response
        got = s3.get_bucket_versioning(Bucket=b)
        assert got.get("Status") == prior, (prior, got)
        assert got.get("MFADelete") != "Enabled", got


def test_put_bucket_versioning_malformed_configuration(s3, srv):
    """A Status other than Enabled/Suspended (the values are case-sensitive: "enabled",
    "Disabled") is MalformedXML (400), as is a body that is not well-formed XML; the state
    does not change. AWS: LocalStack's AWS-validated test_bucket_versioning_crud. An empty
    VersioningConfiguration is refused with 400 too (AWS says
    IllegalVersioningConfigurationException; only the status is pinned)."""
    b = new_bucket(s3, "ver-bad", "Enabled")
    # moto: accepts any Status value, answers an empty configuration and a body that is not
    # well-formed XML with 404.
    for bad in ("enabled", "Disabled", "On"):
        expect_error(
            lambda: s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": bad}),
            "MalformedXML",
            400,
        )
        assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled", bad

    with pytest.raises(ClientError) as ei:
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={})
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, ei.value.response
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled"

    # Not well-formed XML, sent raw (boto3 only sends well-formed bodies). PutBucketVersioning
    # requires an integrity header, so Content-MD5 is sent.
    payload = b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Stat'
    status, _, data = s3raw.request(
        srv.endpoint, "PUT", f"/{b}?versioning", body=payload, headers={"Content-MD5": content_md5(payload)}
    )
    assert status == 400, (status, data)
    assert s3raw.error_code(data) == "MalformedXML", data
    assert s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled"


# --- 3. version ids on writes; reads of a version -----------------------------------------


def test_put_returns_version_ids_and_get_head_select_a_version(s3):
    """In an Enabled bucket every PUT answers with a new VersionId (x-amz-version-id):
    distinct and URL-safe. GET/HEAD without a version id serve the latest and carry its
    x-amz-version-id; with VersionId they serve that version: its bytes, ETag, Content-Type,
    user metadata and length (a Range applies to that version too)."""
    b = new_bucket(s3, "ver-put", "Enabled")
    gens = []
    for i in range(3):
        data = os.urandom(1000 + 777 * i)
        put = s3.put_object(
            Bucket=b, Key="k", Body=data, ContentType=f"application/x-gen{i}", Metadata={"gen": str(i)}
        )
        vid = put.get("VersionId")
        assert_version_id(vid)
        assert headers(put).get("x-amz-version-id") == vid, headers(put)
        gens.append({"data": data, "vid": vid, "etag": put["ETag"]})
    assert len({g["vid"] for g in gens}) == 3
    assert len({g["etag"] for g in gens}) == 3

    latest = gens[-1]
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == latest["data"]
    assert got["VersionId"] == latest["vid"]
    assert headers(got)["x-amz-version-id"] == latest["vid"]
    head = s3.head_object(Bucket=b, Key="k")
    assert head["VersionId"] == latest["vid"]
    assert head["ETag"] == latest["etag"]
    assert head["Metadata"] == {"gen": "2"}

    for i, g in enumerate(gens):
        got = s3.get_object(Bucket=b, Key="k", VersionId=g["vid"])
        assert got["Body"].read() == g["data"], i
        assert got["VersionId"] == g["vid"], i
        assert got["ETag"] == g["etag"], i
        assert got["ContentType"] == f"application/x-gen{i}", i
        assert got["Metadata"] == {"gen": str(i)}, i
        assert got["ContentLength"] == len(g["data"]), i

        head = s3.head_object(Bucket=b, Key="k", VersionId=g["vid"])
        assert head["VersionId"] == g["vid"], i
        assert head["ETag"] == g["etag"], i
        assert head["ContentLength"] == len(g["data"]), i
        assert head["ContentType"] == f"application/x-gen{i}", i
        assert head["Metadata"] == {"gen": str(i)}, i

        part = s3.get_object(Bucket=b, Key="k", VersionId=g["vid"], Range="bytes=10-99")
        assert part["Body"].read() == g["data"][10:100], i
        assert part["ContentRange"] == f"bytes 10-99/{len(g['data'])}", i

    # Other keys get their own ids.
    other = s3.put_object(Bucket=b, Key="other", Body=b"x")["VersionId"]
    assert_version_id(other)
    assert other not in {g["vid"] for g in gens}


# --- 4. delete markers --------------------------------------------------------------------


def test_delete_marker_semantics(s3):
    """DELETE without a version id in an Enabled bucket adds a delete marker: DeleteMarker
    true and the marker's VersionId. Then GET of the key is 404 NoSuchKey and HEAD is 404,
    both with x-amz-delete-marker: true (and the marker's x-amz-version-id on GET, as AWS
    sends). GET or HEAD of the marker by its version id is 405 MethodNotAllowed with
    x-amz-delete-marker: true and a Last-Modified header (AWS GetObject/HeadObject docs);
    a 405 carries Allow (RFC 9110; AWS answers `Allow: DELETE`)."""
    b = new_bucket(s3, "ver-dm", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"two")["VersionId"]

    d = s3.delete_object(Bucket=b, Key="k")
    assert d.get("DeleteMarker") is True, d
    marker = d.get("VersionId")
    assert_version_id(marker)
    assert marker not in (v1, v2)
    assert headers(d).get("x-amz-delete-marker") == "true", headers(d)

    # moto: the 404 lacks x-amz-delete-marker and x-amz-version-id.
    r = expect_error(lambda: s3.get_object(Bucket=b, Key="k"), "NoSuchKey", 404)
    assert headers(r).get("x-amz-delete-marker") == "true", headers(r)
    assert headers(r).get("x-amz-version-id") == marker, headers(r)

    r = expect_error(lambda: s3.head_object(Bucket=b, Key="k"), "404", 404)
    assert headers(r).get("x-amz-delete-marker") == "true", headers(r)

    # moto: 404 NoSuchVersion for GET and HEAD of a marker by id.
    r = expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId=marker), "MethodNotAllowed", 405)
    h = headers(r)
    assert h.get("x-amz-delete-marker") == "true", h
    assert h.get("x-amz-version-id") == marker, h
    assert h.get("last-modified"), h
    assert "DELETE" in h.get("allow", ""), h

    r = expect_error(lambda: s3.head_object(Bucket=b, Key="k", VersionId=marker), "405", 405)
    assert headers(r).get("x-amz-delete-marker") == "true", headers(r)

    # The older versions are still there and readable by id.
    assert body(s3, b, "k", VersionId=v1) == b"one"
    assert body(s3, b, "k", VersionId=v2) == b"two"
    vers, dms = versions_of(s3, b, "k")
    assert vers == [("k", v2, False), ("k", v1, False)]
    assert dms == [("k", marker, True)]

    # A second DELETE stacks a second marker.
    marker2 = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    assert marker2 not in (marker, v1, v2)
    vers, dms = versions_of(s3, b, "k")
    assert dms == [("k", marker2, True), ("k", marker, False)]

    # A DELETE of a key that never existed still adds a marker in an Enabled bucket
    # (LocalStack's AWS-validated test_delete_object_versioned). moto: adds nothing.
    d = s3.delete_object(Bucket=b, Key="never-was")
    assert d.get("DeleteMarker") is True and d.get("VersionId"), d
    assert versions_of(s3, b, "never-was") == ([], [("never-was", d["VersionId"], True)])


def test_delete_specific_version_is_permanent(s3):
    """DELETE with the VersionId of a (non-marker) version removes that version for good:
    the response echoes the VersionId without DeleteMarker, no marker is added, and GET of
    that version is 404 NoSuchVersion. Deleting the newest version makes the previous one
    current; deleting a marker by id removes just the marker."""
    b = new_bucket(s3, "ver-delv", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"two")["VersionId"]
    v3 = s3.put_object(Bucket=b, Key="k", Body=b"three")["VersionId"]

    # A middle version.
    d = s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    assert d.get("VersionId") == v2, d
    assert not d.get("DeleteMarker"), d
    r = expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId=v2), "NoSuchVersion", 404)
    assert "x-amz-delete-marker" not in headers(r), headers(r)
    expect_error(lambda: s3.head_object(Bucket=b, Key="k", VersionId=v2), "404", 404)
    assert versions_of(s3, b, "k") == ([("k", v3, True), ("k", v1, False)], [])
    assert body(s3, b, "k") == b"three"

    # The newest version: the previous one becomes current.
    s3.delete_object(Bucket=b, Key="k", VersionId=v3)
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"one"
    assert got["VersionId"] == v1
    assert s3.head_object(Bucket=b, Key="k")["VersionId"] == v1
    assert versions_of(s3, b, "k") == ([("k", v1, True)], [])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])] == ["k"]

    # A marker on top, a newer version above it; deleting the marker by id leaves the rest.
    m = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    v4 = s3.put_object(Bucket=b, Key="k", Body=b"four")["VersionId"]
    d = s3.delete_object(Bucket=b, Key="k", VersionId=m)
    assert d.get("DeleteMarker") is True and d.get("VersionId") == m, d
    assert versions_of(s3, b, "k") == ([("k", v4, True), ("k", v1, False)], [])

    # The last version: the key is gone, with no marker left behind.
    s3.delete_object(Bucket=b, Key="k", VersionId=v4)
    s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    assert versions_of(s3, b, "k") == ([], [])
    expect_error(lambda: s3.get_object(Bucket=b, Key="k"), "NoSuchKey", 404)


# --- 5. invalid and absent version ids ----------------------------------------------------


def test_invalid_and_absent_version_ids(s3):
    """A version id that is not one the server could have issued ("not-a-version") is 400
    InvalidArgument on GET, HEAD and DELETE. A well-formed id that this key does not have
    (a real id of another key; one that was deleted; "null" when the key has only non-null
    versions) is 404 NoSuchVersion on GET and 404 on HEAD."""
    b = new_bucket(s3, "ver-badid", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=b, Key="k", Body=b"two")
    other = s3.put_object(Bucket=b, Key="other", Body=b"x")["VersionId"]
    gone = s3.put_object(Bucket=b, Key="k", Body=b"three")["VersionId"]
    s3.delete_object(Bucket=b, Key="k", VersionId=gone)

    # AWS: "Invalid version id specified" (LocalStack's AWS-validated
    # test_get_object_with_version_unversioned_bucket). moto: 404 NoSuchVersion.
    r = expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId="not-a-version"), "InvalidArgument", 400)
    assert "x-amz-version-id" not in headers(r), headers(r)
    expect_error(lambda: s3.head_object(Bucket=b, Key="k", VersionId="not-a-version"), "400", 400)
    expect_error(lambda: s3.delete_object(Bucket=b, Key="k", VersionId="not-a-version"), "InvalidArgument", 400)

    for absent in (other, gone, "null"):
        expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId=absent), "NoSuchVersion", 404)
        expect_error(lambda: s3.head_object(Bucket=b, Key="k", VersionId=absent), "404", 404)

    # Nothing above changed the key.
    assert body(s3, b, "k") == b"two"
    assert body(s3, b, "k", VersionId=v1) == b"one"
    assert len(versions_of(s3, b, "k")[0]) == 2


# --- 6. the null version: Suspended, and objects from before versioning -------------------


def test_suspended_put_writes_and_replaces_the_null_version(s3):
    """With versioning Suspended a PUT stores version id "null" (AWS sends no
    x-amz-version-id on that PUT, per LocalStack's AWS-validated
    test_s3_put_object_versioned, and neither does Coffer). A second PUT replaces
    the null version: still exactly one null version, the Enabled-era versions are kept.
    GET then names the version "null"."""
    b = new_bucket(s3, "ver-susp", "Enabled")
    e1 = s3.put_object(Bucket=b, Key="k", Body=b"enabled-1")["VersionId"]
    e2 = s3.put_object(Bucket=b, Key="k", Body=b"enabled-2")["VersionId"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})

    # moto: a PUT in a Suspended bucket drops every older version of the key.
    put = s3.put_object(Bucket=b, Key="k", Body=b"suspended-1")
    # The write made the null version and, as on AWS, says nothing of it.
    assert "VersionId" not in put, put
    assert "x-amz-version-id" not in headers(put), headers(put)
    assert versions_of(s3, b, "k") == ([("k", "null", True), ("k", e2, False), ("k", e1, False)], [])
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"suspended-1"
    assert got.get("VersionId") == "null", got

    s3.put_object(Bucket=b, Key="k", Body=b"suspended-2")
    vers, dms = versions_of(s3, b, "k")
    assert vers == [("k", "null", True), ("k", e2, False), ("k", e1, False)], vers
    assert dms == []
    assert body(s3, b, "k") == b"suspended-2"
    assert body(s3, b, "k", VersionId="null") == b"suspended-2"
    assert body(s3, b, "k", VersionId=e1) == b"enabled-1"
    assert body(s3, b, "k", VersionId=e2) == b"enabled-2"
    assert s3.head_object(Bucket=b, Key="k", VersionId="null")["ContentLength"] == len(b"suspended-2")

    # Enabled again: new PUTs get real ids and the null version stays as an old version.
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    e3 = s3.put_object(Bucket=b, Key="k", Body=b"enabled-3")["VersionId"]
    assert_version_id(e3)
    assert versions_of(s3, b, "k")[0] == [("k", e3, True), ("k", "null", False), ("k", e2, False), ("k", e1, False)]
    assert body(s3, b, "k", VersionId="null") == b"suspended-2"


def test_suspended_delete_writes_a_null_delete_marker(s3):
    """With versioning Suspended a DELETE without a version id writes a delete marker whose
    version id is "null" (DeleteMarker true, VersionId "null"); it replaces the null
    version if there is one and keeps the Enabled-era versions. A later PUT replaces the
    null marker with a null version. (AWS: LocalStack's AWS-validated
    test_delete_object_on_suspended_bucket.)"""
    b = new_bucket(s3, "ver-susp-del", "Enabled")
    e1 = s3.put_object(Bucket=b, Key="k", Body=b"enabled-1")["VersionId"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})

    # No null version yet: the marker goes on top. moto: the DELETE drops every version
    # and answers without DeleteMarker.
    d = s3.delete_object(Bucket=b, Key="k")
    assert d.get("DeleteMarker") is True and d.get("VersionId") == "null", d
    assert versions_of(s3, b, "k") == ([("k", e1, False)], [("k", "null", True)])
    expect_error(lambda: s3.get_object(Bucket=b, Key="k"), "NoSuchKey", 404)
    expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId="null"), "MethodNotAllowed", 405)

    # A PUT replaces the null marker with a null version.
    s3.put_object(Bucket=b, Key="k", Body=b"suspended")
    assert versions_of(s3, b, "k") == ([("k", "null", True), ("k", e1, False)], [])
    assert body(s3, b, "k") == b"suspended"

    # A DELETE replaces the null version with a null marker: its bytes are gone.
    d = s3.delete_object(Bucket=b, Key="k")
    assert d.get("DeleteMarker") is True and d.get("VersionId") == "null", d
    assert versions_of(s3, b, "k") == ([("k", e1, False)], [("k", "null", True)])
    assert body(s3, b, "k", VersionId=e1) == b"enabled-1"

    # Deleting the null marker by id brings e1 back.
    d = s3.delete_object(Bucket=b, Key="k", VersionId="null")
    assert d.get("DeleteMarker") is True and d.get("VersionId") == "null", d
    assert body(s3, b, "k") == b"enabled-1"


def test_objects_from_before_versioning_are_the_null_version(s3):
    """An object written before versioning was ever enabled is version "null": the PUT
    and GET carry no version id then (AWS), ListObjectVersions lists it as "null" and
    IsLatest. It survives enabling: GET then says VersionId "null", a new PUT adds a real
    version above it, and GET/HEAD with VersionId="null" still return the old bytes."""
    b = new_bucket(s3, "ver-pre")
    put = s3.put_object(Bucket=b, Key="k", Body=b"from before", Metadata={"era": "old"})
    assert "VersionId" not in put, put
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"from before"
    assert "VersionId" not in got, got
    assert versions_of(s3, b) == ([("k", "null", True)], [])
    assert body(s3, b, "k", VersionId="null") == b"from before"

    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    # AWS: LocalStack's AWS-validated test_s3_put_object_versioned. moto: no VersionId.
    got = s3.get_object(Bucket=b, Key="k")
    assert got["Body"].read() == b"from before"
    assert got.get("VersionId") == "null", got

    new = s3.put_object(Bucket=b, Key="k", Body=b"after")["VersionId"]
    assert_version_id(new)
    assert versions_of(s3, b) == ([("k", new, True), ("k", "null", False)], [])
    old = s3.get_object(Bucket=b, Key="k", VersionId="null")
    assert old["Body"].read() == b"from before"
    assert old["VersionId"] == "null"
    assert old["Metadata"] == {"era": "old"}
    assert s3.head_object(Bucket=b, Key="k", VersionId="null")["ContentLength"] == len(b"from before")
    assert body(s3, b, "k") == b"after"

    # The null version can be deleted by id like any other.
    d = s3.delete_object(Bucket=b, Key="k", VersionId="null")
    assert d.get("VersionId") == "null" and not d.get("DeleteMarker"), d
    assert versions_of(s3, b) == ([("k", new, True)], [])


# --- 7. ListObjectVersions and the plain listings -----------------------------------------


def build_history(s3, b):
    """Writes a history of PUTs and DELETEs over several keys; returns what
    ListObjectVersions must list, in order: (kind, Key, VersionId) with kind "V" (version)
    or "D" (delete marker), keys ascending, each key's entries newest first."""
    events = {}

    def put(k):
        vid = s3.put_object(Bucket=b, Key=k, Body=f"{k}:{len(events.get(k, []))}".encode())["VersionId"]
        events.setdefault(k, []).append(("V", k, vid))

    def rm(k):
        d = s3.delete_object(Bucket=b, Key=k)
        assert d.get("DeleteMarker") is True, d
        events.setdefault(k, []).append(("D", k, d["VersionId"]))

    for step in [
        ("p", "a"), ("p", "a"), ("p", "a"),
        ("p", "b/1"), ("d", "b/1"), ("p", "b/1"),
        ("p", "b/2"),
        ("d", "c"),
        ("p", "d/x/y"), ("p", "d/x/y"), ("d", "d/x/y"),
        ("p", "e"), ("d", "e"), ("d", "e"), ("p", "e"),
        ("p", "f-"), ("p", "b/1"), ("p", "a"),
    ]:
        (put if step[0] == "p" else rm)(step[1])
    return [e for k in sorted(events) for e in reversed(events[k])]


def split(entries):
    return [(k, v) for kind, k, v in entries if kind == "V"], [(k, v) for kind, k, v in entries if kind == "D"]


def test_list_object_versions_order_islatest_and_paging(s3):
    """ListObjectVersions lists keys ascending and each key's versions and delete markers
    newest first; IsLatest is true on exactly the first entry of each key. Paging with
    MaxKeys and NextKeyMarker/NextVersionIdMarker returns exactly the unpaged sequence:
    every page is the next MaxKeys entries, IsTruncated is true on all but the last page,
    and NextKeyMarker/NextVersionIdMarker name the page's last entry (AWS, per LocalStack's
    AWS-validated test_list_objects_versions_markers: the markers are exclusive)."""
    b = new_bucket(s3, "ver-list", "Enabled")
    want = build_history(s3, b)
    want_v, want_d = split(want)

    full = s3.list_object_versions(Bucket=b)
    assert full["IsTruncated"] is False
    assert "NextKeyMarker" not in full and "NextVersionIdMarker" not in full, full
    got_v = [(x["Key"], x["VersionId"]) for x in full["Versions"]]
    got_d = [(x["Key"], x["VersionId"]) for x in full["DeleteMarkers"]]
    assert got_v == want_v
    assert got_d == want_d
    first_of_key = {}
    for kind, k, v in want:
        first_of_key.setdefault(k, v)
    for x in full["Versions"] + full["DeleteMarkers"]:
        assert x["IsLatest"] == (first_of_key[x["Key"]] == x["VersionId"]), x
    for x in full["Versions"]:
        assert x["Size"] > 0 and x["ETag"], x
    for x in full["DeleteMarkers"]:
        assert "Size" not in x and "ETag" not in x, x

    # MaxKeys=1 shows the interleaving of versions and markers entry by entry.
    for max_keys in (1, 2, 3, 5, 8, len(want) - 1, len(want), len(want) + 1):
        walked, key_marker, vid_marker, pages = [], None, None, 0
        while True:
            args = {"Bucket": b, "MaxKeys": max_keys}
            if key_marker is not None:
                args["KeyMarker"] = key_marker
                if vid_marker is not None:
                    args["VersionIdMarker"] = vid_marker
            page = s3.list_object_versions(**args)
            pages += 1
            assert page["MaxKeys"] == max_keys
            if key_marker is not None:
                assert page["KeyMarker"] == key_marker, page
                if vid_marker is not None:
                    assert page["VersionIdMarker"] == vid_marker, page
            expected = want[len(walked): len(walked) + max_keys]
            ev, ed = split(expected)
            assert [(x["Key"], x["VersionId"]) for x in page.get("Versions", [])] == ev, (max_keys, pages)
            assert [(x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", [])] == ed, (max_keys, pages)
            walked.extend(expected)
            more = len(walked) < len(want)
            assert page["IsTruncated"] == more, (max_keys, pages, page)
            if not more:
                break
            last = expected[-1]
            assert page["NextKeyMarker"] == last[1], (max_keys, pages, page)
            assert page["NextVersionIdMarker"] == last[2], (max_keys, pages, page)
            key_marker, vid_marker = page["NextKeyMarker"], page["NextVersionIdMarker"]
            assert pages <= len(want) + 1, "paging does not terminate"
        assert walked == want
        assert pages == -(-len(want) // max_keys), (max_keys, pages)

    # boto3's paginator (which follows the Next*Marker pair) sees the same.
    pv, pd = [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=b, PaginationConfig={"PageSize": 4}):
        pv.extend((x["Key"], x["VersionId"]) for x in page.get("Versions", []))
        pd.extend((x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", []))
    assert (pv, pd) == (want_v, want_d)

    # KeyMarker alone starts after every version of that key (LocalStack's AWS-validated
    # test_list_objects_versions_markers). moto: lists that key's versions again.
    page = s3.list_object_versions(Bucket=b, KeyMarker="b/1")
    assert split([e for e in want if e[1] > "b/1"]) == (
        [(x["Key"], x["VersionId"]) for x in page.get("Versions", [])],
        [(x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", [])],
    )


def test_list_object_versions_prefix_and_delimiter(s3):
    """Prefix limits ListObjectVersions to matching keys; Delimiter rolls keys up into
    CommonPrefixes (each counts once against MaxKeys) and lists versions only of the keys
    at that level. Paging with a delimiter through one entry at a time walks the same
    sequence; a page that ends on a common prefix gives that prefix as NextKeyMarker (AWS:
    LocalStack's AWS-validated test_list_object_versions_pagination_common_prefixes)."""
    b = new_bucket(s3, "ver-listp", "Enabled")
    want = build_history(s3, b)

    page = s3.list_object_versions(Bucket=b, Prefix="b/")
    assert page["Prefix"] == "b/"
    assert ([(x["Key"], x["VersionId"]) for x in page.get("Versions", [])],
            [(x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", [])]) == split(
        [e for e in want if e[1].startswith("b/")]
    )

    page = s3.list_object_versions(Bucket=b, Prefix="nothing/")
    assert not page.get("Versions") and not page.get("DeleteMarkers") and not page.get("CommonPrefixes")

    # Top level: a, c, e, f- are listed; b/ and d/ roll up.
    top = [e for e in want if "/" not in e[1]]
    page = s3.list_object_versions(Bucket=b, Delimiter="/")
    assert page["Delimiter"] == "/"
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["b/", "d/"]
    assert ([(x["Key"], x["VersionId"]) for x in page.get("Versions", [])],
            [(x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", [])]) == split(top)

    page = s3.list_object_versions(Bucket=b, Prefix="d/", Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d/x/"]
    assert not page.get("Versions") and not page.get("DeleteMarkers")

    # The combined sequence with prefixes in place of their keys, one entry per page.
    # moto: CommonPrefixes do not count against MaxKeys.
    model = []
    for e in want:
        k = e[1]
        if "/" in k:
            cp = k[: k.index("/") + 1]
            if ("P", cp) not in model:
                model.append(("P", cp))
        else:
            model.append(e)
    walked, key_marker, vid_marker = [], None, None
    for _ in range(len(model) + 2):
        args = {"Bucket": b, "Delimiter": "/", "MaxKeys": 1}
        if key_marker is not None:
            args["KeyMarker"] = key_marker
            if vid_marker is not None:
                args["VersionIdMarker"] = vid_marker
        page = s3.list_object_versions(**args)
        entries = [("P", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        entries += [("V", x["Key"], x["VersionId"]) for x in page.get("Versions", [])]
        entries += [("D", x["Key"], x["VersionId"]) for x in page.get("DeleteMarkers", [])]
        assert len(entries) == 1, page
        walked.extend(entries)
        if not page["IsTruncated"]:
            break
        key_marker = page["NextKeyMarker"]
        vid_marker = page.get("NextVersionIdMarker")
        if entries[0][0] == "P":
            assert key_marker == entries[0][1], page
        else:
            assert (key_marker, vid_marker) == entries[0][1:], page
    assert walked == model


def test_plain_listings_hide_keys_whose_latest_is_a_delete_marker(s3):
    """ListObjectsV2 and ListObjects (v1) list only keys whose latest version is not a
    delete marker, with that latest version's size and ETag; a common prefix whose keys are
    all deleted is not listed."""
    b = new_bucket(s3, "ver-plain", "Enabled")
    s3.put_object(Bucket=b, Key="live", Body=b"live-old")
    live = s3.put_object(Bucket=b, Key="live", Body=b"live-newest")
    s3.put_object(Bucket=b, Key="dead", Body=b"x")
    s3.delete_object(Bucket=b, Key="dead")
    s3.put_object(Bucket=b, Key="revived", Body=b"r1")
    s3.delete_object(Bucket=b, Key="revived")
    s3.put_object(Bucket=b, Key="revived", Body=b"r2!")
    s3.delete_object(Bucket=b, Key="marker-only")
    s3.put_object(Bucket=b, Key="undeleted", Body=b"u")
    m = s3.delete_object(Bucket=b, Key="undeleted")["VersionId"]
    s3.delete_object(Bucket=b, Key="undeleted", VersionId=m)
    s3.put_object(Bucket=b, Key="gone/x", Body=b"g")
    s3.delete_object(Bucket=b, Key="gone/x")
    s3.put_object(Bucket=b, Key="here/x", Body=b"h")

    want = ["here/x", "live", "revived", "undeleted"]
    v2 = s3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in v2.get("Contents", [])] == want
    assert v2["KeyCount"] == len(want)
    by_key = {o["Key"]: o for o in v2["Contents"]}
    assert by_key["live"]["Size"] == len(b"live-newest")
    assert by_key["live"]["ETag"] == live["ETag"]
    assert by_key["revived"]["Size"] == 3

    v1 = s3.list_objects(Bucket=b)
    assert [o["Key"] for o in v1.get("Contents", [])] == want

    # Paged one key at a time, the hidden keys do not show up either.
    paged = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 1}):
        paged.extend(o["Key"] for o in page.get("Contents", []))
    assert paged == want

    # moto: still lists "gone/".
    d = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in d.get("CommonPrefixes", [])] == ["here/"]
    assert [o["Key"] for o in d.get("Contents", [])] == ["live", "revived", "undeleted"]
    d1 = s3.list_objects(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in d1.get("CommonPrefixes", [])] == ["here/"]
    assert not s3.list_objects_v2(Bucket=b, Prefix="gone/").get("Contents")


# --- 8. DeleteObjects ---------------------------------------------------------------------


def test_delete_objects_with_and_without_version_ids(s3):
    """DeleteObjects entries with a VersionId remove that version for good (the Deleted
    entry echoes Key and VersionId); entries without one add a delete marker (Deleted has
    DeleteMarker true and DeleteMarkerVersionId). Removing a marker by id reports
    DeleteMarker true with DeleteMarkerVersionId equal to VersionId (AWS: LocalStack's
    AWS-validated test_delete_objects_versioned)."""
    b = new_bucket(s3, "ver-multi", "Enabled")
    k1v1 = s3.put_object(Bucket=b, Key="k1", Body=b"k1-one")["VersionId"]
    k1v2 = s3.put_object(Bucket=b, Key="k1", Body=b"k1-two")["VersionId"]
    k2v1 = s3.put_object(Bucket=b, Key="k2", Body=b"k2-one")["VersionId"]
    k3v1 = s3.put_object(Bucket=b, Key="k3", Body=b"k3-one")["VersionId"]

    r = s3.delete_objects(
        Bucket=b,
        Delete={"Objects": [{"Key": "k1", "VersionId": k1v1}, {"Key": "k2"}, {"Key": "k3", "VersionId": k3v1}]},
    )
    assert not r.get("Errors"), r
    deleted = {d["Key"]: d for d in r["Deleted"]}
    assert set(deleted) == {"k1", "k2", "k3"}, r
    assert deleted["k1"].get("VersionId") == k1v1, r
    assert not deleted["k1"].get("DeleteMarker"), r
    assert deleted["k3"].get("VersionId") == k3v1, r
    assert deleted["k2"].get("DeleteMarker") is True, r
    marker = deleted["k2"].get("DeleteMarkerVersionId")
    assert_version_id(marker)
    assert marker != k2v1

    assert versions_of(s3, b, "k1") == ([("k1", k1v2, True)], [])
    assert versions_of(s3, b, "k2") == ([("k2", k2v1, False)], [("k2", marker, True)])
    assert versions_of(s3, b, "k3") == ([], [])
    expect_error(lambda: s3.get_object(Bucket=b, Key="k1", VersionId=k1v1), "NoSuchVersion", 404)
    assert body(s3, b, "k1") == b"k1-two"
    expect_error(lambda: s3.get_object(Bucket=b, Key="k2"), "NoSuchKey", 404)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])] == ["k1"]

    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k2", "VersionId": marker}]})
    assert not r.get("Errors"), r
    (d,) = r["Deleted"]
    assert d["Key"] == "k2" and d.get("VersionId") == marker, r
    assert d.get("DeleteMarker") is True and d.get("DeleteMarkerVersionId") == marker, r
    assert body(s3, b, "k2") == b"k2-one"
    assert versions_of(s3, b, "k2") == ([("k2", k2v1, True)], [])


# --- 9. CopyObject from a version ---------------------------------------------------------


def test_copy_object_from_a_specific_version(s3):
    """CopyObject with CopySource's VersionId copies that version's bytes; the response
    names the source version (x-amz-copy-source-version-id) and, in an Enabled destination,
    the new version's id. Without a VersionId the latest is copied (and named); if the
    latest is a delete marker the copy fails 404 NoSuchKey, while an older version can still
    be copied by id, and naming the marker as the source version is a 400. Copying an old
    version onto its own key restores it as the newest (AWS user guide, "Restoring previous
    versions")."""
    src = new_bucket(s3, "ver-cp-src", "Enabled")
    dst = new_bucket(s3, "ver-cp-dst", "Enabled")
    s1 = s3.put_object(Bucket=src, Key="k", Body=b"source one")["VersionId"]
    s2 = s3.put_object(Bucket=src, Key="k", Body=b"source two")["VersionId"]

    c = s3.copy_object(Bucket=dst, Key="copy", CopySource={"Bucket": src, "Key": "k", "VersionId": s1})
    assert c.get("CopySourceVersionId") == s1, c
    d1 = c.get("VersionId")
    assert_version_id(d1)
    assert d1 not in (s1, s2)
    got = s3.get_object(Bucket=dst, Key="copy")
    assert got["Body"].read() == b"source one"
    assert got["VersionId"] == d1

    c = s3.copy_object(Bucket=dst, Key="copy", CopySource={"Bucket": src, "Key": "k"})
    assert c.get("CopySourceVersionId") == s2, c
    d2 = c.get("VersionId")
    assert_version_id(d2)
    assert d2 != d1
    assert body(s3, dst, "copy") == b"source two"
    assert versions_of(s3, dst, "copy") == ([("copy", d2, True), ("copy", d1, False)], [])
    assert body(s3, dst, "copy", VersionId=d1) == b"source one"

    # Restore an old version in place.
    c = s3.copy_object(Bucket=src, Key="k", CopySource={"Bucket": src, "Key": "k", "VersionId": s1})
    s3_restored = c["VersionId"]
    assert c.get("CopySourceVersionId") == s1, c
    assert versions_of(s3, src, "k")[0] == [("k", s3_restored, True), ("k", s2, False), ("k", s1, False)]
    assert body(s3, src, "k") == b"source one"

    # Source hidden by a delete marker: a copy of "the latest" is 404 as if the key were
    # gone; naming the marker itself as the source version is a 400 Bad Request (AWS API
    # reference, x-amz-copy-source: "you are not allowed to specify a delete marker as a
    # version for the x-amz-copy-source"; the error code is not pinned). moto: 404
    # NoSuchVersion for the latter.
    marker = s3.delete_object(Bucket=src, Key="k")["VersionId"]
    expect_error(lambda: s3.copy_object(Bucket=dst, Key="c2", CopySource={"Bucket": src, "Key": "k"}), "NoSuchKey", 404)
    with pytest.raises(ClientError) as ei:
        s3.copy_object(Bucket=dst, Key="c2", CopySource={"Bucket": src, "Key": "k", "VersionId": marker})
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, ei.value.response
    c = s3.copy_object(Bucket=dst, Key="c2", CopySource={"Bucket": src, "Key": "k", "VersionId": s2})
    assert c.get("CopySourceVersionId") == s2, c
    assert body(s3, dst, "c2") == b"source two"


# --- 10. multipart ------------------------------------------------------------------------


def test_multipart_upload_in_versioned_bucket_adds_a_version(s3):
    """CompleteMultipartUpload in an Enabled bucket answers with a VersionId; the upload
    becomes the latest version and the version it replaced stays readable."""
    b = new_bucket(s3, "ver-mpu", "Enabled")
    v0 = s3.put_object(Bucket=b, Key="big", Body=b"small earlier version")["VersionId"]
    p1, p2 = os.urandom(5 * MiB), os.urandom(12345)
    up = s3.create_multipart_upload(Bucket=b, Key="big")
    parts = []
    for n, data in enumerate((p1, p2), start=1):
        r = s3.upload_part(Bucket=b, Key="big", UploadId=up["UploadId"], PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket=b, Key="big", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
    )
    vm = done.get("VersionId")
    assert_version_id(vm)
    assert vm != v0

    got = s3.get_object(Bucket=b, Key="big")
    assert got["VersionId"] == vm
    assert got["Body"].read() == p1 + p2
    assert got["ETag"] == done["ETag"]
    assert body(s3, b, "big", VersionId=v0) == b"small earlier version"
    assert s3.head_object(Bucket=b, Key="big", VersionId=vm)["ContentLength"] == len(p1) + len(p2)
    assert versions_of(s3, b, "big") == ([("big", vm, True), ("big", v0, False)], [])


# --- 11. tags per version -----------------------------------------------------------------


def test_object_tagging_per_version(s3):
    """PutObjectTagging/GetObjectTagging/DeleteObjectTagging with a VersionId act on that
    version only and echo its VersionId; without one they act on the latest (AWS:
    LocalStack's AWS-validated test_object_tagging_versioned)."""
    b = new_bucket(s3, "ver-tags", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one", Tagging="gen=one")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"two")["VersionId"]

    def tags(**kw):
        r = s3.get_object_tagging(Bucket=b, Key="k", **kw)
        return r.get("VersionId"), {t["Key"]: t["Value"] for t in r["TagSet"]}

    assert tags() == (v2, {})
    assert tags(VersionId=v1) == (v1, {"gen": "one"})

    # moto: Put/DeleteObjectTagging answer without x-amz-version-id.
    r = s3.put_object_tagging(Bucket=b, Key="k", VersionId=v1, Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    assert r.get("VersionId") == v1, r
    assert tags(VersionId=v1) == (v1, {"old": "yes"})
    assert tags() == (v2, {})
    assert tags(VersionId=v2) == (v2, {})

    r = s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": [{"Key": "new", "Value": "yes"}]})
    assert r.get("VersionId") == v2, r
    assert tags() == (v2, {"new": "yes"})
    assert tags(VersionId=v1) == (v1, {"old": "yes"})
    assert s3.get_object(Bucket=b, Key="k", VersionId=v1).get("TagCount") == 1
    assert s3.get_object(Bucket=b, Key="k", VersionId=v2).get("TagCount") == 1

    r = s3.delete_object_tagging(Bucket=b, Key="k", VersionId=v1)
    assert r.get("VersionId") == v1, r
    assert tags(VersionId=v1) == (v1, {})
    assert tags() == (v2, {"new": "yes"})


# --- 12. SSE-KMS per version --------------------------------------------------------------


def test_sse_kms_each_version_keeps_its_own_key_and_bytes(s3, srv):
    """In an Enabled bucket with SSE-KMS, each version is encrypted on its own: GET of each
    version returns its bytes, and HEAD of each version reports aws:kms and the key (ARN)
    that version was written with, also after newer versions used another key."""
    kms = srv.client("kms")
    ka = kms.create_key(Description="versioning a")["KeyMetadata"]
    kb = kms.create_key(Description="versioning b")["KeyMetadata"]
    b = new_bucket(s3, "ver-sse", "Enabled")

    written = []
    for i, key in enumerate((ka, kb, ka)):
        data = f"secret generation {i} ".encode() * 3000 + os.urandom(100)
        put = s3.put_object(
            Bucket=b, Key="enc", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId=key["KeyId"]
        )
        assert put["ServerSideEncryption"] == "aws:kms", put
        written.append((put["VersionId"], data, key["Arn"]))
    # The bucket default applies to a PUT without SSE headers, as a new version.
    s3.put_bucket_encryption(
        Bucket=b,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kb["Arn"]}}]
        },
    )
    data = os.urandom(70000)
    written.append((s3.put_object(Bucket=b, Key="enc", Body=data)["VersionId"], data, kb["Arn"]))
    assert len({w[0] for w in written}) == 4

    # moto: SSEKMSKeyId is the key id as sent; AWS (and Coffer elsewhere) answer the ARN.
    for vid, data, arn in written:
        head = s3.head_object(Bucket=b, Key="enc", VersionId=vid)
        assert head["ServerSideEncryption"] == "aws:kms", head
        assert head["SSEKMSKeyId"] == arn, (vid, head)
        assert head["ContentLength"] == len(data)
        got = s3.get_object(Bucket=b, Key="enc", VersionId=vid)
        assert got["Body"].read() == data, vid
        assert got["SSEKMSKeyId"] == arn
    assert body(s3, b, "enc") == written[-1][1]


# --- 13. DeleteBucket ---------------------------------------------------------------------


def test_delete_bucket_refused_while_versions_or_markers_remain(s3):
    """DeleteBucket is 409 BucketNotEmpty while any version or delete marker remains, even
    when ListObjectsV2 is already empty; once every version and marker is deleted by id it
    succeeds."""
    b = new_bucket(s3, "ver-delb", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"two")["VersionId"]
    m = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0

    expect_error(lambda: s3.delete_bucket(Bucket=b), "BucketNotEmpty", 409)
    s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    # Only the delete marker is left.
    assert versions_of(s3, b) == ([], [("k", m, True)])
    expect_error(lambda: s3.delete_bucket(Bucket=b), "BucketNotEmpty", 409)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"

    s3.delete_object(Bucket=b, Key="k", VersionId=m)
    assert versions_of(s3, b) == ([], [])
    s3.delete_bucket(Bucket=b)
    expect_error(lambda: s3.head_bucket(Bucket=b), "404", 404)

    # Same for a Suspended bucket holding only old versions. moto: its Suspended DELETE
    # drops every version, so the bucket is empty too early.
    b = new_bucket(s3, "ver-delb-s", "Enabled")
    v = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    s3.delete_object(Bucket=b, Key="k")
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    expect_error(lambda: s3.delete_bucket(Bucket=b), "BucketNotEmpty", 409)
    s3.delete_object(Bucket=b, Key="k", VersionId="null")
    expect_error(lambda: s3.delete_bucket(Bucket=b), "BucketNotEmpty", 409)
    s3.delete_object(Bucket=b, Key="k", VersionId=v)
    s3.delete_bucket(Bucket=b)


def test_delete_bucket_with_only_an_unfinished_multipart_upload(s3):
    """A general purpose bucket whose only content is an in-progress multipart upload can be
    deleted, and the upload goes with it: a bucket re-created under the same name has no
    uploads. (AWS DeleteBucket API reference: every object version and delete marker must
    be gone; only for directory buckets must in-progress uploads be aborted first. The user
    guide's "Emptying a bucket" merely recommends aborting them.)"""
    b = new_bucket(s3, "ver-mpu-del")
    up = s3.create_multipart_upload(Bucket=b, Key="pending")
    s3.upload_part(Bucket=b, Key="pending", UploadId=up["UploadId"], PartNumber=1, Body=os.urandom(5 * MiB))
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])] == [up["UploadId"]]
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0

    s3.delete_bucket(Bucket=b)
    expect_error(lambda: s3.head_bucket(Bucket=b), "404", 404)

    s3.create_bucket(Bucket=b)
    assert not s3.list_multipart_uploads(Bucket=b).get("Uploads"), "the old upload survived the bucket"
    expect_error(
        lambda: s3.list_parts(Bucket=b, Key="pending", UploadId=up["UploadId"]), "NoSuchUpload", 404
    )
    assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
    assert versions_of(s3, b) == ([], [])


# --- 14. permissions: naming a version asks for the ...Version actions ---------------------


def test_naming_a_version_needs_the_version_actions(srv, s3):
    """AWS authorizes a request that names a version (`versionId`) with the `...Version`
    actions (s3:GetObjectVersion for GET/HEAD, s3:DeleteObjectVersion for DELETE,
    s3:GetObjectVersionTagging, and s3:GetObjectVersion on a copy source naming a version),
    so a policy can grant the latest version alone. A user allowed s3:GetObject,
    s3:PutObject and s3:DeleteObject can read, write and delete the latest version but
    nothing by version id until the version actions are granted."""
    import json

    from test_iam import as_user, code, new_user

    b = new_bucket(s3, "ver-perm", "Enabled")
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=b, Key="k", Body=b"two")
    name = unique("ver-user")
    key = new_user(srv, name)
    iam = srv.client("iam")

    def allow(actions):
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions,
                           "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]}))

    allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging"])
    user = as_user(srv, "s3", key)
    assert user.get_object(Bucket=b, Key="k")["Body"].read() == b"two"
    assert code(user.get_object, Bucket=b, Key="k", VersionId=v1) == (403, "AccessDenied")
    assert code(user.head_object, Bucket=b, Key="k", VersionId=v1)[0] == 403
    assert code(user.get_object_tagging, Bucket=b, Key="k", VersionId=v1) == (403, "AccessDenied")
    assert code(user.delete_object, Bucket=b, Key="k", VersionId=v1) == (403, "AccessDenied")
    assert code(user.copy_object, Bucket=b, Key="copy",
                CopySource={"Bucket": b, "Key": "k", "VersionId": v1}) == (403, "AccessDenied")
    # DeleteObjects names versions in its body: each such key needs the version action.
    r = user.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "k", "VersionId": v1}, {"Key": "other"}]})
    assert [(e["Key"], e["Code"]) for e in r.get("Errors", [])] == [("k", "AccessDenied")]
    assert [d["Key"] for d in r["Deleted"]] == ["other"]
    assert body(s3, b, "k", VersionId=v1) == b"one", "the denied calls changed nothing"

    allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion",
           "s3:GetObjectVersionTagging", "s3:DeleteObjectVersion"])
    assert user.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert user.get_object_tagging(Bucket=b, Key="k", VersionId=v1)["VersionId"] == v1
    user.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k", "VersionId": v1})
    assert body(s3, b, "copy") == b"one"
    user.delete_object(Bucket=b, Key="k", VersionId=v1)
    expect_error(lambda: s3.get_object(Bucket=b, Key="k", VersionId=v1), "NoSuchVersion", 404)


# --- 15. the audit trail names versions -----------------------------------------------------


def test_audit_records_name_the_version(srv, s3):
    """CloudTrail data events of a versioned bucket: a PUT's record carries the version it
    wrote (responseElements x-amz-version-id), a read or delete of a version names it
    (requestParameters versionId)."""
    import json
    import time

    b = new_bucket(s3, "ver-audit", "Enabled")
    start = time.time() - 1
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=b, Key="k", Body=b"two")
    s3.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read()
    s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    ct = srv.client("cloudtrail")

    def records():
        out, token = [], None
        while True:
            args = {"StartTime": start}
            if token:
                args["NextToken"] = token
            r = ct.lookup_events(**args)
            out.extend(json.loads(e["CloudTrailEvent"]) for e in r["Events"])
            token = r.get("NextToken")
            if not token:
                return [d for d in out if (d.get("requestParameters") or {}).get("bucketName") == b]

    deadline = time.time() + 10
    while time.time() < deadline:
        mine = records()
        if {"PutObject", "GetObject", "DeleteObject"} <= {d["eventName"] for d in mine}:
            break
        time.sleep(0.2)
    puts = [d for d in mine if d["eventName"] == "PutObject"]
    assert v1 in [(d.get("responseElements") or {}).get("x-amz-version-id") for d in puts], puts
    get = [d for d in mine if d["eventName"] == "GetObject"]
    assert [d["requestParameters"].get("versionId") for d in get] == [v1], get
    assert get[0].get("responseElements") is None, get
    delete = [d for d in mine if d["eventName"] == "DeleteObject"]
    assert [d["requestParameters"].get("versionId") for d in delete] == [v1], delete


def test_metrics_count_each_buckets_versions_and_their_bytes(s3, srv):
    import urllib.request

    b = new_bucket(s3, "usage", "Enabled")
    s3.put_object(Bucket=b, Key="a", Body=b"x" * 100)
    s3.put_object(Bucket=b, Key="a", Body=b"x" * 30)
    s3.put_object(Bucket=b, Key="b", Body=b"x" * 7)
    s3.delete_object(Bucket=b, Key="b")
    s3.delete_object(Bucket=b, Key="never")

    def gauges():
        with urllib.request.urlopen(srv.endpoint + "/_coffer/metrics") as r:
            lines = r.read().decode().splitlines()
        out = {}
        for line in lines:
            if f'{{bucket="{b}"}}' in line:
                name, value = line.split(" ")
                out[name.split("{")[0]] = int(value)
        return out

    assert gauges() == {
        "coffer_s3_objects": 1,
        "coffer_s3_object_bytes": 30,
        "coffer_s3_noncurrent_versions": 2,
        "coffer_s3_noncurrent_version_bytes": 107,
        "coffer_s3_delete_markers": 2,
    }
