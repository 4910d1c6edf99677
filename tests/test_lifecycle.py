"""S3 lifecycle rules with boto3 and the aws CLI, on a server whose lifecycle "day" is one
second (COFFER_S3_DAY_SECONDS=1): the configuration's grammar and AWS's validation errors,
`x-amz-expiration`, and the background worker's actions — expiration of current objects
(removal, or a delete marker in a versioned bucket), noncurrent-version expiration (with
NewerNoncurrentVersions), expired delete markers, aborting incomplete multipart uploads —
each visible in `aws cloudtrail lookup-events` and counted in the metrics; rules never
remove versions Object Lock protects.

Expected errors and shapes follow LocalStack's AWS-validated snapshots
(tests/aws/services/s3/test_s3.snapshot.json, TestS3BucketLifecycle) and ceph's s3-tests;
each check names its source where it is not AWS's documentation.
"""

import base64
import hashlib
import json
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import Server, after_passes

POLL_SECONDS = 20


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-lifecycle-") as d:
        s = Server(d, env={"COFFER_S3_DAY_SECONDS": "1"}).start()
        yield s
        s.stop()


@pytest.fixture
def s3(srv):
    return srv.client("s3")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_bucket(s3, prefix, versioned=False, lock=False):
    b = unique(prefix)
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=lock)
    if versioned and not lock:
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    return b


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def rules(s3, bucket, *rs):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rs)})


def wait_for(what, check):
    deadline = time.time() + POLL_SECONDS
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def state(s3, bucket):
    """(versions, delete markers) as sets of (key, version id)."""
    r = s3.list_object_versions(Bucket=bucket)
    return ({(v["Key"], v["VersionId"]) for v in r.get("Versions", [])},
            {(m["Key"], m["VersionId"]) for m in r.get("DeleteMarkers", [])})


def trail(srv, name):
    """The lifecycle records of one action name, via the aws CLI."""
    out = srv.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                  f"AttributeKey=EventName,AttributeValue={name}", expect_json=True)
    return [json.loads(e["CloudTrailEvent"]) for e in out["Events"]]


def metrics(srv):
    with urllib.request.urlopen(srv.endpoint + "/_coffer/metrics") as r:
        return r.read().decode()


# --- the configuration -------------------------------------------------------------------


def test_configurations_round_trip_in_the_shape_they_were_written(s3):
    b = new_bucket(s3, "lc-shape")
    # LocalStack get-bucket-lifecycle-exc-1.
    assert err(s3.get_bucket_lifecycle_configuration, Bucket=b) == (
        404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
    written = [
        {"ID": "empty-prefix", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}},
        {"ID": "tagged", "Status": "Disabled", "Filter": {"Tag": {"Key": "class", "Value": "tmp"}},
         "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=timezone.utc)}},
        {"ID": "and", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
                            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 3, "NewerNoncurrentVersions": 2},
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "up/"},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        {"ID": "markers", "Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    r = s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": written})
    assert r["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)
    assert got["Rules"] == written
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    # A rule without an ID gets one (ceph s3-tests test_lifecycle_get_no_id); the old
    # rule-level Prefix form is kept as such.
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 1}}]})
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert rule["ID"] and rule["Prefix"] == "old/" and "Filter" not in rule
    # DeleteBucketLifecycle: 204, and again when there is none.
    assert s3.delete_bucket_lifecycle(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_bucket_lifecycle(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err(s3.get_bucket_lifecycle_configuration, Bucket=b)[:2] == (404, "NoSuchLifecycleConfiguration")


def test_malformed_configurations_get_awss_errors_and_change_nothing(s3, srv):
    b = new_bucket(s3, "lc-bad")
    good = [{"ID": "keep", "Status": "Enabled", "Filter": {"Prefix": "x/"}, "Expiration": {"Days": 5}}]
    rules(s3, b, *good)
    malformed = "MalformedXML"
    cases = [
        # (rules, status, code, message or None) — sources in the module docstring.
        ([{"ID": "s", "Status": "enabled", "Filter": {}, "Expiration": {"Days": 1}}], 400, malformed, None),
        ([{"ID": "a", "Status": "Enabled", "Filter": {}}], 400, "InvalidRequest",
         "At least one action needs to be specified in a rule"),
        ([{"ID": "d", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}], 400, "InvalidArgument",
         "'Days' for Expiration action must be a positive integer"),
        ([{"ID": "m", "Status": "Enabled", "Filter": {},
           "Expiration": {"Date": datetime(2030, 1, 1, 12, tzinfo=timezone.utc)}}], 400, "InvalidArgument",
         "'Date' must be at midnight GMT"),
        ([{"ID": "e", "Status": "Enabled", "Filter": {},
           "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}], 400, malformed, None),
        ([{"ID": "n", "Status": "Enabled", "Filter": {},
           "NoncurrentVersionExpiration": {"NewerNoncurrentVersions": 2}}], 400, "InvalidArgument",
         "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"),
        ([{"ID": "t", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}], 400, "InvalidRequest",
         "AbortIncompleteMultipartUpload cannot be specified with Tags."),
        ([{"ID": "ia", "Status": "Enabled", "Filter": {},
           "Transitions": [{"Days": 5, "StorageClass": "STANDARD_IA"}]}], 400, "InvalidArgument", None),
        ([{"ID": "f", "Status": "Enabled", "Filter": {"Prefix": "a", "Tag": {"Key": "k", "Value": "v"}},
           "Expiration": {"Days": 1}}], 400, malformed, None),
        ([{"ID": "nf", "Status": "Enabled", "Expiration": {"Days": 1}}], 400, malformed, None),
        ([{"ID": "dup", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}},
          {"ID": "dup", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 2}}], 400, "InvalidArgument", None),
        ([{"ID": "dk", "Status": "Enabled", "Filter": {"And": {"Tags": [
            {"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}}, "Expiration": {"Days": 1}}],
         400, "InvalidRequest", "Duplicate Tag Keys are not allowed."),
        ([{"ID": "v1", "Status": "Enabled", "Prefix": "a/", "Expiration": {"Days": 1}},
          {"ID": "v2", "Status": "Enabled", "Filter": {"Prefix": "b/"}, "Expiration": {"Days": 1}}],
         400, "InvalidRequest", "Filter element can only be used in Lifecycle V2."),
    ]
    for rs, status, code, message in cases:
        got = err(s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": rs})
        assert got[:2] == (status, code), (rs, got)
        if message:
            assert got[2] == message, (rs, got)
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"] == good
    # Without Content-MD5 or a checksum (botocore's model requires one).
    body = (b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>r</ID>'
            b'<Filter></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>'
            b'</LifecycleConfiguration>')
    status, _, data = s3raw.request(srv.endpoint, "PUT", f"/{b}?lifecycle", body=body)
    assert (status, s3raw.error_code(data)) == (400, "InvalidRequest"), data
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, _, data = s3raw.request(srv.endpoint, "PUT", f"/{b}?lifecycle", body=body, headers={"Content-MD5": md5})
    assert status == 200, data
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"][0]["ID"] == "r"


# --- the worker --------------------------------------------------------------------------


def test_days_beyond_the_calendar_neither_fail_requests_nor_stop_the_worker(s3, srv):
    """A rule's days come from clients: 2**31-1 real days lie past the year 9999 (the day
    arithmetic saturates there: objects' unit test day_arithmetic_saturates_instead_of_panicking).
    Requests the rule applies to still answer, and the worker goes on for every other
    bucket."""
    far = new_bucket(s3, "lc-far")
    rules(s3, far,
          {"ID": "forever", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 2147483647},
           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2147483647}},
          {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "old/"},
           "NoncurrentVersionExpiration": {"NoncurrentDays": 2147483647}})
    put = s3.put_object(Bucket=far, Key="k", Body=b"x")
    assert put["Expiration"].startswith('expiry-date="') and 'rule-id="forever"' in put["Expiration"]
    assert s3.head_object(Bucket=far, Key="k")["Expiration"] == put["Expiration"]
    assert s3.create_multipart_upload(Bucket=far, Key="u")["AbortRuleId"] == "forever"
    near = new_bucket(s3, "lc-near")
    rules(s3, near, {"ID": "soon", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}})
    s3.put_object(Bucket=near, Key="k", Body=b"x")
    wait_for("the other bucket's expiry", lambda: "Contents" not in s3.list_objects_v2(Bucket=near))
    assert s3.get_object(Bucket=far, Key="k")["Body"].read() == b"x"


def test_current_objects_expire_with_the_header_saying_when(s3, srv):
    b = new_bucket(s3, "lc-expire")
    rules(s3, b, {"ID": "tmp-files", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 2}},
          {"ID": "big-tagged", "Status": "Enabled",
           "Filter": {"And": {"Prefix": "data/", "Tags": [{"Key": "class", "Value": "scratch"}],
                              "ObjectSizeGreaterThan": 3}},
           "Expiration": {"Days": 1}})
    put = s3.put_object(Bucket=b, Key="tmp/a", Body=b"a")
    # x-amz-expiration: the object's time plus two (one-second) days, and the rule.
    expiry = put["Expiration"]
    assert 'rule-id="tmp-files"' in expiry and expiry.startswith('expiry-date="'), expiry
    assert s3.head_object(Bucket=b, Key="tmp/a")["Expiration"] == expiry
    assert s3.get_object(Bucket=b, Key="tmp/a")["Expiration"] == expiry
    s3.put_object(Bucket=b, Key="keep/b", Body=b"b")
    assert "Expiration" not in s3.head_object(Bucket=b, Key="keep/b")
    s3.put_object(Bucket=b, Key="data/scratch", Body=b"big enough", Tagging="class=scratch")
    s3.put_object(Bucket=b, Key="data/small", Body=b"abc", Tagging="class=scratch")
    s3.put_object(Bucket=b, Key="data/untagged", Body=b"big enough")

    def keys():
        return {o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])}

    wait_for("expiry", lambda: keys() == {"keep/b", "data/small", "data/untagged"})
    # Each action is in the trail, as an AWS service event, and in the metrics.
    records = wait_for("records", lambda: [r for r in trail(srv, "S3.EXPIRE.OBJECT")
                                           if r["additionalEventData"]["bucketName"] == b])
    by_key = {r["additionalEventData"]["key"]: r for r in records}
    assert set(by_key) == {"tmp/a", "data/scratch"}
    r = by_key["tmp/a"]
    assert r["eventType"] == "AwsServiceEvent" and r["eventSource"] == "s3.amazonaws.com"
    assert r["userIdentity"] == {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
    assert r["additionalEventData"]["lifecycleRuleId"] == "tmp-files"
    assert r["resources"][0]["ARN"] == f"arn:aws:s3:::{b}/tmp/a"
    m = metrics(srv)
    assert f'coffer_s3_lifecycle_actions_total{{bucket="{b}",rule="tmp-files",action="expire"}} 1' in m
    assert f'coffer_s3_lifecycle_actions_total{{bucket="{b}",rule="big-tagged",action="expire"}} 1' in m


def test_versioned_buckets_expire_into_markers_and_clean_up_noncurrent_versions(s3, srv):
    b = new_bucket(s3, "lc-versions", versioned=True)
    v1 = s3.put_object(Bucket=b, Key="doc", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="doc", Body=b"2")["VersionId"]
    kept = [s3.put_object(Bucket=b, Key="history", Body=str(i).encode())["VersionId"] for i in range(5)]
    rules(s3, b,
          {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "doc"}, "Expiration": {"Days": 1}},
          {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": "doc"},
           "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
          {"ID": "keep-two", "Status": "Enabled", "Filter": {"Prefix": "history"},
           "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2}})
    # The current version expires into a delete marker; noncurrent ones are removed a day
    # after they became noncurrent; the marker, alone at last and a day old, goes too.
    wait_for("doc to be gone", lambda: not any(k == "doc" for k, _ in state(s3, b)[0] | state(s3, b)[1]))
    markers = [r for r in trail(srv, "S3.CREATE.DELETEMARKER") if r["additionalEventData"]["bucketName"] == b]
    assert [r["additionalEventData"]["key"] for r in markers] == ["doc"]
    removed = {r["additionalEventData"]["versionId"] for r in trail(srv, "S3.EXPIRE.OBJECT")
               if r["additionalEventData"]["bucketName"] == b and r["additionalEventData"]["key"] == "doc"}
    assert {v1, v2, markers[0]["additionalEventData"]["deleteMarkerVersionId"]} == removed
    # NewerNoncurrentVersions: the current version and the two newest noncurrent stay.
    wait_for("history to keep three", lambda: {v for k, v in state(s3, b)[0] if k == "history"} == set(kept[2:]))
    after_passes(srv, "lifecycle")
    assert {v for k, v in state(s3, b)[0] if k == "history"} == set(kept[2:]), "and no more go"


def test_expired_delete_markers_are_removed_only_when_alone(s3, srv):
    b = new_bucket(s3, "lc-markers", versioned=True)
    rules(s3, b, {"ID": "markers", "Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": True}})
    v = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    m = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    after_passes(srv, "lifecycle")
    assert state(s3, b) == ({("k", v)}, {("k", m)}), "a marker over a version is not expired"
    s3.delete_object(Bucket=b, Key="k", VersionId=v)
    wait_for("the lone marker to go", lambda: state(s3, b) == (set(), set()))
    assert any(r["additionalEventData"]["versionId"] == m for r in trail(srv, "S3.EXPIRE.OBJECT"))


def test_incomplete_multipart_uploads_are_aborted(s3, srv):
    b = new_bucket(s3, "lc-uploads")
    rules(s3, b, {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "up/"},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    created = s3.create_multipart_upload(Bucket=b, Key="up/big")
    up = created["UploadId"]
    # x-amz-abort-date / x-amz-abort-rule-id: when the rule will abort it.
    assert created["AbortRuleId"] == "abort"
    assert -timedelta(seconds=1) < created["AbortDate"] - datetime.now(timezone.utc) <= timedelta(seconds=2)
    s3.upload_part(Bucket=b, Key="up/big", UploadId=up, PartNumber=1, Body=b"p" * 1024)
    assert s3.list_parts(Bucket=b, Key="up/big", UploadId=up)["AbortRuleId"] == "abort"
    other_created = s3.create_multipart_upload(Bucket=b, Key="elsewhere")
    assert "AbortDate" not in other_created and "AbortRuleId" not in other_created
    other = other_created["UploadId"]
    wait_for("the upload to be aborted",
             lambda: [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])] == [other])
    assert err(s3.list_parts, Bucket=b, Key="up/big", UploadId=up)[:2] == (404, "NoSuchUpload")
    r = [r for r in trail(srv, "S3.DELETE.UPLOAD") if r["additionalEventData"]["bucketName"] == b]
    assert [x["additionalEventData"]["versionId"] for x in r] == [up]


def test_rules_never_remove_locked_versions(s3, srv):
    b = new_bucket(s3, "lc-locked", lock=True)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"1", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"2", ObjectLockLegalHoldStatus="ON")["VersionId"]
    rules(s3, b,
          {"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}},
          {"ID": "noncurrent", "Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})
    # Expiring the current version writes a delete marker (allowed over locked versions, as
    # on S3); neither locked version is removed, pass after pass.
    wait_for("a delete marker", lambda: state(s3, b)[1])
    after_passes(srv, "lifecycle", 3)
    versions, markers = state(s3, b)
    assert versions == {("k", v1), ("k", v2)} and len(markers) == 1


def test_the_aws_cli_manages_lifecycle_and_a_day_passes_in_a_second(s3, srv):
    b = new_bucket(s3, "lc-cli")
    cfg = {"Rules": [{"ID": "cli", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}
    srv.aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", b,
            "--lifecycle-configuration", json.dumps(cfg))
    got = srv.aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", b, expect_json=True)
    assert got["Rules"] == cfg["Rules"]
    s3.put_object(Bucket=b, Key="short-lived", Body=b"x")
    wait_for("expiry", lambda: "Contents" not in s3.list_objects_v2(Bucket=b))
    out = srv.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                  "AttributeKey=ResourceName,AttributeValue=" + f"arn:aws:s3:::{b}/short-lived", expect_json=True)
    # Newest first: the worker's expiration after the client's write.
    assert [e["EventName"] for e in out["Events"]] == ["S3.EXPIRE.OBJECT", "PutObject"]
