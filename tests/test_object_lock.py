"""S3 Object Lock with boto3 and the aws CLI: buckets created with Object Lock, the lock
configuration and its default retention, retention and legal hold of each version (on
PUT, CopyObject and multipart uploads, and changed later), and the enforcement: a locked
version cannot be removed by the bucket's account root, by the operator, by deleting the
account or the bucket; GOVERNANCE gives way only to the bypass header *and* the
s3:BypassGovernanceRetention permission; COMPLIANCE to nobody until its date.

Time is shortened with COFFER_S3_DAY_SECONDS (a retention "day" of a few seconds), never
by sleeping for days. Error codes and messages are AWS's, as recorded against real S3 by
LocalStack's AWS-validated snapshots (tests/aws/services/s3/test_s3*.snapshot.json) and
quoted from AWS responses in versitygw's issues; each check says which.
"""

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import ACCESS_KEY, SECRET_KEY, Server, coffer_bin

DAY_SECONDS = 3
LOCKED = "Access Denied because object protected by object lock."


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-lock-") as d:
        s = Server(d, env={"COFFER_S3_DAY_SECONDS": str(DAY_SECONDS)}).start()
        yield s
        s.stop()


@pytest.fixture
def s3(srv):
    return srv.client("s3")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def lock_bucket(s3, prefix="lock"):
    b = unique(prefix)
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    return b


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def in_(seconds):
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def versions(s3, bucket):
    r = s3.list_object_versions(Bucket=bucket)
    return [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])], [
        (m["Key"], m["VersionId"]) for m in r.get("DeleteMarkers", [])
    ]


def wait_past(when):
    """Sleeps until the server clock (same host) is past `when`."""
    left = (when - datetime.now(timezone.utc)).total_seconds()
    assert left < 60, f"a retention {left:.0f} s away: the day knob did not apply"
    if left > 0:
        time.sleep(left + 0.3)


class Tenant:
    def __init__(self, srv, name):
        env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        p = subprocess.run([coffer_bin(), "account", "create", name, "--endpoint", srv.endpoint],
                           capture_output=True, text=True, env=env, check=True)
        self.info = json.loads(p.stdout)
        self.id = self.info["AccountId"]
        self.srv = srv

    def client(self, service="s3"):
        return self.srv.client(service, access_key=self.info["AccessKeyId"], secret_key=self.info["SecretAccessKey"])

    def aws(self, *args, **kw):
        env = {"AWS_ACCESS_KEY_ID": self.info["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": self.info["SecretAccessKey"]}
        return self.srv.aws(*args, env=env, **kw)


def delete_account(srv, account_id):
    env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
    return subprocess.run([coffer_bin(), "account", "delete", account_id, "--endpoint", srv.endpoint],
                          capture_output=True, text=True, env=env)


def user_with(srv, name, actions, bucket):
    """An IAM user of the operator's account allowed `actions` on the bucket's objects."""
    iam = srv.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions,
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
    }))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return srv.client("s3", access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])


# --- the lock configuration --------------------------------------------------------------


def test_a_lock_bucket_is_versioned_for_good_and_keeps_its_default_retention(s3):
    b = lock_bucket(s3)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    # LocalStack test_disable_versioning_on_locked_bucket: 409 with this message.
    assert err(s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Suspended"}) == (
        409, "InvalidBucketState",
        "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})

    cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}}
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=cfg)
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == cfg
    # A new version gets the default, counted in (shortened) days from its writing.
    before = datetime.now(timezone.utc)
    v = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    h = s3.head_object(Bucket=b, Key="k", VersionId=v)
    assert h["ObjectLockMode"] == "GOVERNANCE"
    until = h["ObjectLockRetainUntilDate"]
    assert before + timedelta(seconds=2 * DAY_SECONDS - 1) <= until <= datetime.now(timezone.utc) + timedelta(seconds=2 * DAY_SECONDS + 1)
    assert "ObjectLockLegalHoldStatus" not in h
    r = s3.get_object_retention(Bucket=b, Key="k", VersionId=v)["Retention"]
    assert r == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    # A write that asks for its own retention keeps it instead of the default.
    own = in_(3600).replace(microsecond=0)
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"y", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=own)["VersionId"]
    assert s3.get_object_retention(Bucket=b, Key="k", VersionId=v2)["Retention"] == {"Mode": "COMPLIANCE", "RetainUntilDate": own}

    # Years, and removing the rule (Object Lock itself stays on).
    cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 1}}}
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=cfg)
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == cfg
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    v3 = s3.put_object(Bucket=b, Key="k", Body=b"z")["VersionId"]
    assert "ObjectLockMode" not in s3.head_object(Bucket=b, Key="k", VersionId=v3)
    s3.delete_object(Bucket=b, Key="k", VersionId=v3)


def test_lock_can_be_turned_on_for_a_versioned_bucket_only(s3):
    b = unique("plain")
    s3.create_bucket(Bucket=b)
    cfg = {"ObjectLockEnabled": "Enabled"}
    # LocalStack test_put_object_lock_configuration_on_existing_bucket.
    assert err(s3.put_object_lock_configuration, Bucket=b, ObjectLockConfiguration=cfg) == (
        409, "InvalidBucketState", "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
    assert err(s3.get_object_lock_configuration, Bucket=b) == (
        404, "ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket")
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=cfg)
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == cfg
    assert err(s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Suspended"})[:2] == (
        409, "InvalidBucketState")


def test_malformed_lock_configurations_are_refused_and_change_nothing(s3):
    b = lock_bucket(s3)
    good = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=good)
    malformed = "The XML you provided was not well-formed or did not validate against our published schema"
    for bad in [
        {"ObjectLockEnabled": "Disabled"},
        {"Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}},
        {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}},
        {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE"}}},
        {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Days": 1}}},
        {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "FOREVER", "Days": 1}}},
        {"ObjectLockEnabled": "Enabled", "Rule": {}},
    ]:
        assert err(s3.put_object_lock_configuration, Bucket=b, ObjectLockConfiguration=bad) == (400, "MalformedXML", malformed), bad
    # versitygw #1738 (AWS's reply): InvalidArgument for a period that is not positive.
    for bad in [{"Days": 0}, {"Years": -1}, {"Days": 36501}]:
        cfg = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", **bad}}}
        assert err(s3.put_object_lock_configuration, Bucket=b, ObjectLockConfiguration=cfg)[:2] == (400, "InvalidArgument"), bad
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == good
    # Configuration writes need an integrity check (versitygw #1301, AWS's reply).
    body = b'<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>'
    status, _, data = s3raw.request(s3.meta.endpoint_url, "PUT", f"/{b}?object-lock", body=body)
    assert (status, s3raw.error_code(data)) == (400, "InvalidRequest"), data
    assert b"Content-MD5 OR x-amz-checksum-*" in data
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == good
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, _, data = s3raw.request(s3.meta.endpoint_url, "PUT", f"/{b}?object-lock", body=body, headers={"Content-MD5": md5})
    assert status == 200, data
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}


# --- enforcement -------------------------------------------------------------------------


def test_compliance_outlives_the_account_root_until_its_date_then_gives_way(s3):
    """Must show: a COMPLIANCE version cannot be deleted by the account root before its
    date, and can be after it (a default retention of one shortened day)."""
    b = lock_bucket(s3)
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    v = s3.put_object(Bucket=b, Key="record", Body=b"kept for a day")["VersionId"]
    until = s3.get_object_retention(Bucket=b, Key="record", VersionId=v)["Retention"]["RetainUntilDate"]
    # The root of the bucket's own account: refused, with and without the bypass (LocalStack
    # delete-obj-locked / delete-locked-2).
    assert err(s3.delete_object, Bucket=b, Key="record", VersionId=v) == (403, "AccessDenied", LOCKED)
    assert err(s3.delete_object, Bucket=b, Key="record", VersionId=v, BypassGovernanceRetention=True) == (403, "AccessDenied", LOCKED)
    # Nor can it be shortened, removed, or weakened to GOVERNANCE (LocalStack
    # update-retention-shortened / update-retention-less-restrictive).
    for retention in [
        {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(seconds=1)},
        {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)},
        {},
    ]:
        assert err(s3.put_object_retention, Bucket=b, Key="record", VersionId=v, Retention=retention,
                   BypassGovernanceRetention=True) == (403, "AccessDenied", LOCKED), retention
    # DeleteObjects names it in its per-key errors (LocalStack delete-objects-locked).
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "record", "VersionId": v}]}, BypassGovernanceRetention=True)
    assert r["Errors"] == [{"Key": "record", "VersionId": v, "Code": "AccessDenied", "Message": LOCKED}]
    # Nor does the bucket go (BucketNotEmpty).
    assert err(s3.delete_bucket, Bucket=b)[:2] == (409, "BucketNotEmpty")
    # A delete marker can always be written; the version stays.
    marker = s3.delete_object(Bucket=b, Key="record")
    assert marker["DeleteMarker"] is True
    assert versions(s3, b) == ([("record", v)], [("record", marker["VersionId"])])
    assert s3.get_object(Bucket=b, Key="record", VersionId=v)["Body"].read() == b"kept for a day"

    # Its date passes (one shortened day): now the root can remove it, and the bucket.
    wait_past(until)
    s3.delete_object(Bucket=b, Key="record", VersionId=v)
    s3.delete_object(Bucket=b, Key="record", VersionId=marker["VersionId"])
    assert versions(s3, b) == ([], [])
    s3.delete_bucket(Bucket=b)


def test_compliance_holds_against_the_tenant_root_the_operator_and_account_deletion(srv):
    """Must show: a tenant's COMPLIANCE version (written with the aws CLI) survives its
    account's root, the operator even when a bucket policy grants it everything, `coffer
    account delete`, and DeleteBucket."""
    t = Tenant(srv, unique("lock-tenant"))
    b = unique("tenant-lock")
    t.aws("s3api", "create-bucket", "--bucket", b, "--object-lock-enabled-for-bucket")
    until = in_(3600).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"ledger")
        f.flush()
        out = t.aws("s3api", "put-object", "--bucket", b, "--key", "ledger", "--body", f.name,
                    "--object-lock-mode", "COMPLIANCE", "--object-lock-retain-until-date", until, expect_json=True)
    v = out["VersionId"]
    got = t.aws("s3api", "get-object-retention", "--bucket", b, "--key", "ledger", "--version-id", v, expect_json=True)
    assert got["Retention"]["Mode"] == "COMPLIANCE"
    p = t.aws("s3api", "delete-object", "--bucket", b, "--key", "ledger", "--version-id", v,
              "--bypass-governance-retention", check=False)
    assert p.returncode != 0 and "AccessDenied" in p.stderr and "object lock" in p.stderr, p.stderr

    # The operator, granted everything on the bucket by its owner's policy.
    operator = srv.client("sts").get_caller_identity()["Account"]
    t.client().put_bucket_policy(Bucket=b, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{operator}:root"}, "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}],
    }))
    op = srv.client("s3")
    assert op.get_object(Bucket=b, Key="ledger", VersionId=v)["Body"].read() == b"ledger", "the grant works"
    assert err(op.delete_object, Bucket=b, Key="ledger", VersionId=v, BypassGovernanceRetention=True) == (403, "AccessDenied", LOCKED)
    assert err(op.delete_bucket, Bucket=b)[:2] == (409, "BucketNotEmpty")
    # Deleting the account is refused while it owns the bucket, which cannot go.
    p = delete_account(srv, t.id)
    assert p.returncode != 0 and "DeleteConflict" in p.stderr, p.stderr
    assert err(t.client().delete_bucket, Bucket=b)[:2] == (409, "BucketNotEmpty")
    assert t.client().get_object(Bucket=b, Key="ledger", VersionId=v)["Body"].read() == b"ledger"


def test_governance_gives_way_only_to_the_header_and_the_permission(srv):
    """Must show: bypassing GOVERNANCE needs x-amz-bypass-governance-retention and
    s3:BypassGovernanceRetention; an IAM user without the permission gets AccessDenied."""
    s3 = srv.client("s3")
    b = lock_bucket(s3, "gov")
    everyday = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion",
                "s3:GetObjectRetention", "s3:PutObjectRetention", "s3:ListBucketVersions"]
    alice = user_with(srv, unique("alice"), everyday, b)
    bob = user_with(srv, unique("bob"), everyday + ["s3:BypassGovernanceRetention"], b)
    until = in_(3600)
    vs = [alice.put_object(Bucket=b, Key=f"k{i}", Body=b"g", ObjectLockMode="GOVERNANCE",
                           ObjectLockRetainUntilDate=until)["VersionId"] for i in range(3)]
    # Without the header, nobody: not alice, not bob, not the root.
    for who in (alice, bob, s3):
        assert err(who.delete_object, Bucket=b, Key="k0", VersionId=vs[0]) == (403, "AccessDenied", LOCKED)
    # The header without the permission: AccessDenied, and the version stays.
    code = err(alice.delete_object, Bucket=b, Key="k0", VersionId=vs[0], BypassGovernanceRetention=True)
    assert code[:2] == (403, "AccessDenied")
    code = err(alice.put_object_retention, Bucket=b, Key="k1", VersionId=vs[1], Retention={}, BypassGovernanceRetention=True)
    assert code[:2] == (403, "AccessDenied")
    # Shortening GOVERNANCE without the bypass is refused; lengthening needs none.
    assert err(alice.put_object_retention, Bucket=b, Key="k1", VersionId=vs[1],
               Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until - timedelta(minutes=5)}) == (403, "AccessDenied", LOCKED)
    longer = (until + timedelta(hours=1)).replace(microsecond=0)
    alice.put_object_retention(Bucket=b, Key="k1", VersionId=vs[1], Retention={"Mode": "GOVERNANCE", "RetainUntilDate": longer})
    assert alice.get_object_retention(Bucket=b, Key="k1", VersionId=vs[1])["Retention"]["RetainUntilDate"] == longer
    assert sorted(v for _, v in versions(s3, b)[0]) == sorted(vs)
    # Header and permission: bob deletes one version and lifts another's retention.
    bob.delete_object(Bucket=b, Key="k0", VersionId=vs[0], BypassGovernanceRetention=True)
    bob.put_object_retention(Bucket=b, Key="k1", VersionId=vs[1], Retention={}, BypassGovernanceRetention=True)
    assert err(bob.get_object_retention, Bucket=b, Key="k1", VersionId=vs[1]) == (
        404, "NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration")
    alice.delete_object(Bucket=b, Key="k1", VersionId=vs[1])
    # The account root holds every permission: the header is enough for it.
    s3.delete_object(Bucket=b, Key="k2", VersionId=vs[2], BypassGovernanceRetention=True)
    assert versions(s3, b) == ([], [])


def test_a_legal_hold_blocks_deletion_until_it_is_lifted(s3, srv):
    """Must show: a legal hold blocks deletion (by anyone, bypass or not) until removed."""
    b = lock_bucket(s3, "hold")
    v = s3.put_object(Bucket=b, Key="evidence", Body=b"e", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.head_object(Bucket=b, Key="evidence")["ObjectLockLegalHoldStatus"] == "ON"
    assert s3.get_object_legal_hold(Bucket=b, Key="evidence", VersionId=v)["LegalHold"] == {"Status": "ON"}
    assert err(s3.delete_object, Bucket=b, Key="evidence", VersionId=v, BypassGovernanceRetention=True) == (
        403, "AccessDenied", LOCKED)
    # With the aws CLI too.
    p = srv.aws("s3api", "delete-object", "--bucket", b, "--key", "evidence", "--version-id", v, check=False)
    assert p.returncode != 0 and "AccessDenied" in p.stderr
    # A hold on a version without one: on, then off (GET shows OFF once set).
    v2 = s3.put_object(Bucket=b, Key="other", Body=b"o")["VersionId"]
    assert err(s3.get_object_legal_hold, Bucket=b, Key="other", VersionId=v2)[:2] == (404, "NoSuchObjectLockConfiguration")
    srv.aws("s3api", "put-object-legal-hold", "--bucket", b, "--key", "other", "--legal-hold", "Status=ON")
    assert err(s3.delete_object, Bucket=b, Key="other", VersionId=v2) == (403, "AccessDenied", LOCKED)
    # Lifted: the versions can go.
    for key, ver in (("evidence", v), ("other", v2)):
        s3.put_object_legal_hold(Bucket=b, Key=key, VersionId=ver, LegalHold={"Status": "OFF"})
        assert s3.get_object_legal_hold(Bucket=b, Key=key, VersionId=ver)["LegalHold"] == {"Status": "OFF"}
        assert s3.head_object(Bucket=b, Key=key, VersionId=ver)["ObjectLockLegalHoldStatus"] == "OFF"
        s3.delete_object(Bucket=b, Key=key, VersionId=ver)
    assert versions(s3, b) == ([], [])
    s3.delete_bucket(Bucket=b)


def test_multipart_uploads_and_copies_carry_their_own_lock(s3):
    b = lock_bucket(s3, "mpu")
    until = in_(3600).replace(microsecond=0)
    up = s3.create_multipart_upload(Bucket=b, Key="big", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                                    ObjectLockLegalHoldStatus="ON", ChecksumAlgorithm="CRC32")
    part = s3.upload_part(Bucket=b, Key="big", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 1000, ChecksumAlgorithm="CRC32")
    done = s3.complete_multipart_upload(Bucket=b, Key="big", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]}]})
    h = s3.head_object(Bucket=b, Key="big", VersionId=done["VersionId"])
    assert (h["ObjectLockMode"], h["ObjectLockRetainUntilDate"], h["ObjectLockLegalHoldStatus"]) == ("GOVERNANCE", until, "ON")
    # A copy does not inherit the source's lock (LocalStack's copy tests); it takes its own.
    c = s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "big"})
    h = s3.head_object(Bucket=b, Key="copy", VersionId=c["VersionId"])
    assert "ObjectLockMode" not in h and "ObjectLockLegalHoldStatus" not in h
    c = s3.copy_object(Bucket=b, Key="copy2", CopySource={"Bucket": b, "Key": "big"},
                       ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    assert s3.get_object_retention(Bucket=b, Key="copy2", VersionId=c["VersionId"])["Retention"]["Mode"] == "COMPLIANCE"
    # A multipart upload into a bucket with a default retention gets it when completed.
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    up = s3.create_multipart_upload(Bucket=b, Key="dflt", ChecksumAlgorithm="CRC32")
    part = s3.upload_part(Bucket=b, Key="dflt", UploadId=up["UploadId"], PartNumber=1, Body=b"d", ChecksumAlgorithm="CRC32")
    before = datetime.now(timezone.utc)
    done = s3.complete_multipart_upload(Bucket=b, Key="dflt", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]}]})
    r = s3.get_object_retention(Bucket=b, Key="dflt", VersionId=done["VersionId"])["Retention"]
    assert r["Mode"] == "GOVERNANCE"
    assert before + timedelta(seconds=DAY_SECONDS - 1) <= r["RetainUntilDate"] <= before + timedelta(seconds=DAY_SECONDS + 2)


# --- bad input ---------------------------------------------------------------------------


def test_bad_lock_requests_get_awss_errors_and_change_nothing(s3, srv):
    plain = unique("nolock")
    s3.create_bucket(Bucket=plain)
    s3.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    until = in_(3600)
    # Lock headers where there is no Object Lock (versitygw #1751: AWS's wording, no spaces).
    assert err(s3.put_object, Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
               ObjectLockRetainUntilDate=until) == (400, "InvalidRequest", "Bucket is missing ObjectLockConfiguration")
    assert err(s3.put_object, Bucket=plain, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")[:2] == (400, "InvalidRequest")
    assert err(s3.create_multipart_upload, Bucket=plain, Key="k", ObjectLockLegalHoldStatus="ON")[:2] == (400, "InvalidRequest")
    v = s3.put_object(Bucket=plain, Key="k", Body=b"x")["VersionId"]
    # Retention and legal hold calls there (LocalStack test_s3_object_retention_exc: with spaces).
    missing = (400, "InvalidRequest", "Bucket is missing Object Lock Configuration")
    assert err(s3.get_object_retention, Bucket=plain, Key="k") == missing
    assert err(s3.put_object_retention, Bucket=plain, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}) == missing
    assert err(s3.get_object_legal_hold, Bucket=plain, Key="k") == missing
    assert err(s3.put_object_legal_hold, Bucket=plain, Key="k", LegalHold={"Status": "ON"}) == missing
    # The bypass header where there is no Object Lock (LocalStack test_delete_object_with_no_locking).
    assert err(s3.delete_object, Bucket=plain, Key="k", VersionId=v, BypassGovernanceRetention=True)[:2] == (400, "InvalidArgument")
    assert versions(s3, plain) == ([("k", v)], [])

    b = lock_bucket(s3, "bad")
    # A date in the past (versitygw #1734), one header without the other, a mode that is not
    # one (LocalStack test_s3_object_lock_mode_validation), a hold that is neither ON nor OFF.
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=past) == (
        400, "InvalidArgument", "The retain until date must be in the future!")
    both = "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE") == (400, "InvalidArgument", both)
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockRetainUntilDate=until) == (400, "InvalidArgument", both)
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockMode="FOREVER", ObjectLockRetainUntilDate=until) == (
        400, "InvalidArgument", "Unknown wormMode directive.")
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ObjectLockLegalHoldStatus="MAYBE") == (
        400, "InvalidArgument", "Legal Hold must be either of 'ON' or 'OFF'")
    # Lock headers without Content-MD5 or a checksum (versitygw #1535, AWS's reply).
    status, _, data = s3raw.request(srv.endpoint, "PUT", f"/{b}/k", body=b"x", headers={
        "x-amz-object-lock-legal-hold": "ON"})
    assert (status, s3raw.error_code(data)) == (400, "InvalidRequest"), data
    assert b"Content-MD5 OR x-amz-checksum- HTTP header is required" in data
    assert versions(s3, b) == ([], [])
    v = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    assert err(s3.put_object_retention, Bucket=b, Key="k", VersionId=v,
               Retention={"Mode": "GOVERNANCE", "RetainUntilDate": past}) == (400, "InvalidArgument", "The retain until date must be in the future!")
    assert err(s3.get_object_retention, Bucket=b, Key="k", VersionId=v)[:2] == (404, "NoSuchObjectLockConfiguration")
    # Retention of a delete marker: 405 (LocalStack test_object_lock_delete_markers).
    m = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    assert err(s3.put_object_retention, Bucket=b, Key="k", VersionId=m,
               Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})[:2] == (405, "MethodNotAllowed")
    assert err(s3.get_object_retention, Bucket=b, Key="k", VersionId=m)[:2] == (405, "MethodNotAllowed")
    assert err(s3.put_object_retention, Bucket=b, Key="k", VersionId="0" * 32,
               Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})[:2] == (404, "NoSuchVersion")
    assert versions(s3, b) == ([("k", v)], [("k", m)])
    assert err(s3.get_object_retention, Bucket=b, Key="k", VersionId=v)[:2] == (404, "NoSuchObjectLockConfiguration")
