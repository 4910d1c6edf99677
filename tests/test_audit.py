"""The audit trail through the stock aws CLI and boto3: CloudTrail records for S3, KMS and
IAM calls (denied ones too), the KMS calls S3 made for a caller (invokedBy, linked to the
S3 event), background KMS actions as service events, LookupEvents with its filters and
per-tenant isolation, durability across kill -9, `coffer audit verify` against tampering,
and a scan of the trail for every secret the test used."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server, coffer_bin
from test_iam import as_user, code, new_user
from test_tenants import Tenant


def events(srv, client=None, **kw):
    ct = client or srv.client("cloudtrail")
    out, token = [], None
    while True:
        args = dict(kw)
        if token:
            args["NextToken"] = token
        r = ct.lookup_events(**args)
        out.extend(r["Events"])
        token = r.get("NextToken")
        if not token:
            return out


def detail(e):
    return json.loads(e["CloudTrailEvent"])


def verify(data_dir):
    return subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(data_dir)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-audit-") as d:
        s = Server(d, env={"COFFER_KMS_DAY_SECONDS": "0.2"}).start()
        yield s
        s.stop()


def test_lookup_events_finds_the_calls_the_kms_calls_s3_made_and_denials(srv):
    s3, kms = srv.client("s3"), srv.client("kms")
    start = time.time() - 1
    key = srv.aws("kms", "create-key", "--description", "audited", expect_json=True)["KeyMetadata"]
    s3.create_bucket(Bucket="audited")
    srv.aws("s3api", "put-bucket-encryption", "--bucket", "audited", "--server-side-encryption-configuration",
            json.dumps({"Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}}]}))
    s3.put_object(Bucket="audited", Key="doc.txt", Body=b"audited content")
    nobody = new_user(srv, "audit-nobody")
    assert code(as_user(srv, "s3", nobody).get_object, Bucket="audited", Key="doc.txt") == (403, "AccessDenied")

    names = {}
    for e in events(srv, StartTime=start):
        names.setdefault(e["EventName"], []).append(e)
    for n in ("CreateKey", "PutBucketEncryption", "PutObject", "GenerateDataKey", "CreateBucket", "CreateUser"):
        assert n in names, sorted(names)

    create = detail(names["CreateKey"][0])
    assert create["eventSource"] == "kms.amazonaws.com" and create["eventVersion"] == "1.11"
    assert create["responseElements"]["keyMetadata"]["keyId"] == key["KeyId"], create
    assert create["requestParameters"]["description"] == "audited"
    assert create["userIdentity"]["type"] == "Root" and create["managementEvent"] is True

    put = [detail(e) for e in names["PutObject"] if detail(e)["requestParameters"]["key"] == "doc.txt"][0]
    assert put["eventCategory"] == "Data" and put["requestParameters"]["bucketName"] == "audited", put
    gdk = [detail(e) for e in names["GenerateDataKey"]
           if detail(e).get("additionalEventData", {}).get("causedByEventId") == put["eventID"]]
    assert len(gdk) == 1, names["GenerateDataKey"]
    gdk = gdk[0]
    assert gdk["userIdentity"]["invokedBy"] == "s3.amazonaws.com", gdk
    assert gdk["requestParameters"]["encryptionContext"] == {"aws:s3:arn": "arn:aws:s3:::audited/doc.txt"}
    assert gdk["requestParameters"]["keyId"] == key["Arn"]
    assert gdk["requestID"] == put["requestID"]

    denied = [detail(e) for e in names.get("GetObject", []) if detail(e).get("errorCode") == "AccessDenied"]
    assert denied and denied[0]["userIdentity"]["userName"] == "audit-nobody", names.get("GetObject")

    # Attribute filters, through the aws CLI too.
    only = srv.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                   "AttributeKey=EventName,AttributeValue=PutBucketEncryption", expect_json=True)["Events"]
    assert only and {e["EventName"] for e in only} == {"PutBucketEncryption"}
    by_source = events(srv, LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}])
    assert by_source and {e["EventSource"] for e in by_source} == {"kms.amazonaws.com"}
    by_user = events(srv, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "audit-nobody"}])
    assert by_user and all(detail(e)["userIdentity"]["userName"] == "audit-nobody" for e in by_user)
    by_resource = events(srv, LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}])
    assert {"CreateKey", "GenerateDataKey"} <= {e["EventName"] for e in by_resource}
    assert events(srv, LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    # Time ranges: nothing before the test started; pages of 2 cover the same events.
    assert events(srv, EndTime=start - 3600) == []
    # (LookupEvents calls are events too: leave them out of the comparison.)
    calls = lambda es: [e["EventId"] for e in es if e["EventName"] != "LookupEvents"]  # noqa: E731
    paged = events(srv, StartTime=start, MaxResults=2)
    assert calls(paged) == calls(events(srv, StartTime=start))
    assert code(srv.client("cloudtrail").lookup_events,
                LookupAttributes=[{"AttributeKey": "Nope", "AttributeValue": "x"}])[1] in (
        "InvalidLookupAttributesException", "ValidationException")
    # A user without cloudtrail:LookupEvents is denied, and that denial is itself recorded.
    assert code(as_user(srv, "cloudtrail", nobody).lookup_events)[1] == "AccessDeniedException"


def test_kms_records_show_what_cloudtrail_shows_of_each_reply(srv):
    """Response elements of key creation, deletion scheduling and grants (never the grant's
    token), and the key as the record's resource however the request named it."""
    kms = srv.client("kms")
    start = time.time() - 1
    key = kms.create_key(Description="elements")["KeyMetadata"]
    kms.create_alias(AliasName="alias/elements", TargetKeyId=key["KeyId"])
    account = key["Arn"].split(":")[4]
    grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{account}:root",
                             Operations=["Decrypt"])
    kms.describe_key(KeyId=key["KeyId"])
    kms.encrypt(KeyId="alias/elements", Plaintext=b"x")
    kms.list_grants(KeyId=key["KeyId"])
    kms.generate_random(NumberOfBytes=16)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=key["KeyId"])

    # LookupEvents answers newest first, so each name's first record is this test's own
    # (the window may also hold the previous test's calls of the same second).
    mine = {}
    for e in events(srv, StartTime=start):
        d = detail(e)
        if d.get("eventSource") == "kms.amazonaws.com":
            mine.setdefault(d["eventName"], []).append(d)
    created = mine["CreateGrant"][0]
    assert created["responseElements"] == {"grantId": grant["GrantId"]}, created
    assert grant["GrantToken"] not in json.dumps(created)
    scheduled = mine["ScheduleKeyDeletion"][0]["responseElements"]
    assert scheduled["keyId"] == key["Arn"] and scheduled["keyState"] == "PendingDeletion", scheduled
    assert scheduled["pendingWindowInDays"] == 7 and "deletionDate" in scheduled, scheduled
    assert mine["CancelKeyDeletion"][0]["responseElements"] == {"keyId": key["Arn"]}
    for name in ("CreateKey", "CreateGrant", "DescribeKey", "Encrypt", "ListGrants",
                 "ScheduleKeyDeletion", "CancelKeyDeletion"):
        resources = mine[name][0].get("resources")
        assert resources == [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key["Arn"]}], (name, resources)
    assert not mine["GenerateRandom"][0].get("resources")
    assert "responseElements" not in mine["Encrypt"][0] or mine["Encrypt"][0]["responseElements"] is None


def test_background_kms_actions_are_service_events(srv):
    kms = srv.client("kms")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    deadline = time.time() + 20
    while time.time() < deadline:
        found = events(srv, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DeleteKey"}])
        hits = [detail(e) for e in found if kid in e["CloudTrailEvent"]]
        if hits:
            break
        time.sleep(0.5)
    assert hits, "no DeleteKey service event"
    assert hits[0]["eventType"] == "AwsServiceEvent" and hits[0]["userIdentity"]["type"] == "AWSService"


def test_tenants_see_only_their_own_events(srv):
    a, b = Tenant(srv, "audit-a"), Tenant(srv, "audit-b")
    a.client("s3").create_bucket(Bucket="audit-a-bucket")
    b.client("kms").create_key(Description="b's key")
    a_events = events(srv, client=a.client("cloudtrail"))
    assert a_events and all(detail(e)["recipientAccountId"] == a.id for e in a_events)
    assert "CreateBucket" in {e["EventName"] for e in a_events}
    assert "CreateKey" not in {e["EventName"] for e in a_events}
    b_events = events(srv, client=b.client("cloudtrail"))
    assert all(detail(e)["recipientAccountId"] == b.id for e in b_events)
    # The operator sees both.
    accounts = {detail(e)["recipientAccountId"] for e in events(srv)}
    assert {a.id, b.id} <= accounts


def test_management_records_survive_kill_9_and_the_trail_still_verifies():
    with tempfile.TemporaryDirectory(prefix="coffer-audit-kill-") as d:
        s = Server(d).start()
        kid = s.client("kms").create_key(Description="before the crash")["KeyMetadata"]["KeyId"]
        s.client("iam").create_user(UserName="made-before-crash")
        s.kill9()
        s.start()
        got = events(s, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}])
        assert any(kid in e["CloudTrailEvent"] for e in got)
        assert events(s, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}])
        s.stop()
        p = verify(d)
        assert p.returncode == 0 and "intact" in p.stdout, p.stdout + p.stderr


def tampered(d, change):
    """Copies a sealed trail, applies `change` to the copy, returns verify's result."""
    with tempfile.TemporaryDirectory(prefix="coffer-audit-copy-") as c:
        copy = Path(c) / "data"
        shutil.copytree(d, copy)
        change(copy / "audit")
        return verify(copy)


def test_verify_names_modified_deleted_inserted_and_reordered_records_and_files():
    with tempfile.TemporaryDirectory(prefix="coffer-audit-verify-") as d:
        s = Server(d, env={"COFFER_AUDIT_ROTATE_SECONDS": "1"}).start()
        kms = s.client("kms")
        for i in range(3):
            kms.create_key(Description=f"key {i}")
            kms.create_key(Description=f"more {i}")
            time.sleep(1.2)  # a sealed file per pair of keys
        s.stop()
        audit = Path(d) / "audit"
        files = sorted(audit.glob("trail-*.jsonl"))
        sealed = [f for f in files if (audit / f.name.replace(".jsonl", ".digest.json")).exists()]
        assert len(sealed) >= 3, files
        ok = verify(d)
        assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr

        target = sealed[1].name

        def modify(a):
            p = a / target
            p.write_text(p.read_text().replace("key 1", "key X"))

        def delete_record(a):
            p = a / target
            lines = p.read_text().splitlines(keepends=True)
            p.write_text("".join(lines[1:]))

        def insert_record(a):
            p = a / target
            lines = p.read_text().splitlines(keepends=True)
            p.write_text("".join(lines[:1] + lines[:1] + lines[1:]))

        def reorder_files(a):
            x, y = a / sealed[0].name, a / sealed[1].name
            tmp = a / "swap"
            x.rename(tmp)
            y.rename(x)
            tmp.rename(y)

        def delete_file(a):
            (a / target).unlink()
            (a / target.replace(".jsonl", ".digest.json")).unlink()

        for name, change in [("modify", modify), ("delete record", delete_record), ("insert", insert_record),
                             ("reorder files", reorder_files), ("delete file", delete_file)]:
            p = tampered(d, change)
            assert p.returncode != 0, (name, p.stdout)
            assert "trail-" in p.stdout, (name, p.stdout)
        p = tampered(d, modify)
        assert f"{target} line 1" in p.stdout and "modified" in p.stdout, p.stdout
        p = tampered(d, reorder_files)
        assert sealed[0].name in p.stdout, p.stdout

        # Reordering records inside a file.
        def reorder_records(a):
            p = a / sealed[0].name
            lines = p.read_text().splitlines(keepends=True)
            assert len(lines) >= 2, lines
            p.write_text("".join([lines[1], lines[0]] + lines[2:]))
        p = tampered(d, reorder_records)
        assert p.returncode != 0 and f"{sealed[0].name} line 1" in p.stdout, p.stdout


def exercise_secrets(s):
    """Calls that carry every kind of secret through the server; returns the secrets (as
    text, in the forms the wire carries them) and a plaintext marker."""
    s3, kms, iam = s.client("s3"), s.client("kms"), s.client("iam")
    secrets = [SECRET_KEY]
    marker = b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    enc = kms.encrypt(KeyId=kid, Plaintext=marker)
    kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
    secrets += [base64.b64encode(dk["Plaintext"]).decode(), dk["Plaintext"].hex()]
    rnd = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    secrets += [base64.b64encode(rnd).decode()]
    hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = kms.generate_mac(KeyId=hmac, Message=marker, MacAlgorithm="HMAC_SHA_256")["Mac"]
    secrets += [base64.b64encode(mac).decode()]
    iam.create_user(UserName="secret-holder")
    k = iam.create_access_key(UserName="secret-holder")["AccessKey"]
    secrets.append(k["SecretAccessKey"])
    try:  # signed with the user's secret; the user may do nothing yet
        s.client(access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"]).list_buckets()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied"
    s3.create_bucket(Bucket="secrets")
    s3.put_object(Bucket="secrets", Key="kms", Body=marker, ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    s3.get_object(Bucket="secrets", Key="kms")["Body"].read()
    customer_key = os.urandom(32)
    s3.put_object(Bucket="secrets", Key="c", Body=marker, SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key)
    s3.get_object(Bucket="secrets", Key="c", SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key)["Body"].read()
    secrets += [base64.b64encode(customer_key).decode()]
    grant = kms.create_grant(KeyId=kid, GranteePrincipal=f"arn:aws:iam::{s.client('sts').get_caller_identity()['Account']}:user/secret-holder",
                             Operations=["Decrypt"])
    secrets.append(grant["GrantToken"])
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))
    cred = s.client("sts").assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="sess")["Credentials"]
    secrets += [cred["SecretAccessKey"], cred["SessionToken"]]
    # The console: signing in (the root, and the role session with its token), its session
    # cookie and CSRF token, and an access key it creates (whose secret the page shows).
    import re
    import requests
    base = s.endpoint + "/_coffer/console"
    sessions = []
    for key_id, secret, token in ((ACCESS_KEY, SECRET_KEY, ""),
                                  (cred["AccessKeyId"], cred["SecretAccessKey"], cred["SessionToken"])):
        h = requests.Session()
        r = h.post(base + "/sign-in", allow_redirects=False, data={
            "access_key_id": key_id, "secret_access_key": secret, "session_token": token})
        assert r.status_code == 303, r.text[:300]
        secrets.append(h.cookies["coffer-console"])
        sessions.append(h)
    root = sessions[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', root.get(base + "/buckets").text).group(1)
    secrets.append(csrf)
    page = root.post(base + "/identities/users/secret-holder", data={"csrf": csrf, "action": "create-key"}).text
    secrets.append(re.search(r'<code class="secret">([^<]+)</code>', page).group(1))
    return secrets, marker


def test_no_secret_reaches_the_trail():
    with tempfile.TemporaryDirectory(prefix="coffer-audit-secrets-") as d:
        s = Server(d, extra_args=["--allow-insecure-sse-c"]).start()
        secrets, marker = exercise_secrets(s)
        s.stop()
        blob = b"".join(p.read_bytes() for p in (Path(d) / "audit").iterdir())
        assert b"CreateAccessKey" in blob and b"GenerateDataKey" in blob  # the calls are there
        for secret in secrets:
            assert secret.encode() not in blob, secret[:6]
        assert marker not in blob
        assert base64.b64encode(marker) not in blob


def test_no_secret_reaches_the_log_at_its_most_verbose():
    """The server at COFFER_LOG=trace (every crate, every level; s3s, which logs whole
    requests with their headers at debug, is held at info whatever COFFER_LOG says) logs
    none of the secrets the calls carried, nor the plaintext. Without that hold, the
    SSE-C key was in the log."""
    with tempfile.TemporaryDirectory(prefix="coffer-log-secrets-") as d:
        s = Server(d, extra_args=["--allow-insecure-sse-c"], env={"COFFER_LOG": "trace,s3s=trace"}).start()
        secrets, marker = exercise_secrets(s)
        s.stop()
        log = "\n".join(s.stdout_lines + s.stderr_lines)
        assert "shutting down" in log, "the server's whole log was read"
        for secret in secrets:
            assert secret not in log, f"{secret[:6]}... is in the log"
        assert marker.decode() not in log
        assert base64.b64encode(marker).decode() not in log


def test_metrics_and_usage_count_what_happened():
    import urllib.request
    with tempfile.TemporaryDirectory(prefix="coffer-audit-usage-") as d:
        s = Server(d).start()
        s3, kms = s.client("s3"), s.client("kms")
        key = kms.create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket="metered")
        for i in range(3):
            s3.put_object(Bucket="metered", Key=f"k{i}", Body=b"x" * 100, ServerSideEncryption="aws:kms",
                          SSEKMSKeyId=key)
        s3.get_object(Bucket="metered", Key="k0")["Body"].read()
        kms.encrypt(KeyId=key, Plaintext=b"p")
        text = urllib.request.urlopen(s.endpoint + "/_coffer/metrics").read().decode()
        assert 'coffer_requests_total{api="s3",operation="PutObject",status="200"} 3' in text, text
        assert f'coffer_kms_operations_total{{key="{key}",operation="GenerateDataKey"}} 3' in text, text
        assert f'coffer_kms_operations_total{{key="{key}",operation="Decrypt"}} 1' in text, text
        assert f'coffer_kms_operations_total{{key="{key}",operation="Encrypt"}} 1' in text, text
        assert 'coffer_request_duration_seconds_count{api="s3",operation="PutObject"} 3' in text, text
        assert 'coffer_bytes_in_total{api="s3"} ' in text and "coffer_audit_write_lag_seconds " in text
        s.stop()
        acct = key.split(":")[4]
        out = subprocess.run([coffer_bin(), "usage", "--data-dir", d, "--json"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        rows = {(r["AccountId"], r["EventSource"], r["Operation"], r["Key"]): r["Requests"] for r in json.loads(out.stdout)}
        assert rows[(acct, "kms.amazonaws.com", "GenerateDataKey", key)] == 3, rows
        assert rows[(acct, "kms.amazonaws.com", "Decrypt", key)] == 1, rows
        assert rows[(acct, "s3.amazonaws.com", "PutObject", "")] == 3, rows
        table = subprocess.run([coffer_bin(), "usage", "--data-dir", d], capture_output=True, text=True).stdout
        assert "GenerateDataKey" in table and key in table, table
        none = subprocess.run([coffer_bin(), "usage", "--data-dir", d, "--json", "--end", "2001-01-01T00:00:00Z"],
                              capture_output=True, text=True)
        assert json.loads(none.stdout) == [], none.stdout


def test_sealed_trail_files_are_delivered_into_a_bucket_as_cloudtrail_does():
    import gzip
    with tempfile.TemporaryDirectory(prefix="coffer-audit-delivery-") as d:
        s = Server(d, extra_args=["--audit-delivery-bucket", "trail-logs"],
                   env={"COFFER_AUDIT_ROTATE_SECONDS": "1"}).start()
        s3, kms = s.client("s3"), s.client("kms")
        s3.create_bucket(Bucket="trail-logs")
        kid = kms.create_key(Description="delivered")["KeyMetadata"]["KeyId"]
        acct = s.client("sts").get_caller_identity()["Account"]
        prefix = f"AWSLogs/{acct}/CloudTrail/us-east-1/"
        deadline = time.time() + 20
        records = []
        while time.time() < deadline:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="trail-logs", Prefix=prefix).get("Contents", [])]
            records = []
            for k in keys:
                assert k.endswith(".json.gz") and f"/{acct}_CloudTrail_us-east-1_" in k, k
                records += json.loads(gzip.decompress(s3.get_object(Bucket="trail-logs", Key=k)["Body"].read()))["Records"]
            if any(r["eventName"] == "CreateKey" and r["responseElements"]["keyMetadata"]["keyId"] == kid for r in records):
                break
            time.sleep(0.5)
        assert any(r["eventName"] == "CreateKey" for r in records), [r["eventName"] for r in records]
        digests = s3.list_objects_v2(Bucket="trail-logs", Prefix=f"AWSLogs/{acct}/CloudTrail-Digest/").get("Contents", [])
        assert digests, "no digest delivered"
        d0 = json.loads(gzip.decompress(s3.get_object(Bucket="trail-logs", Key=digests[0]["Key"])["Body"].read()))
        assert d0["signatureAlgorithm"] == "HMAC-SHA256" and d0["signature"], d0
        s.stop()


def test_calls_to_unimplemented_s3_operations_are_recorded_by_their_real_name(srv):
    """Terraform reads a bucket's website, accelerate, replication... configuration; those
    calls are answered NotImplemented, and the trail names them (not "Unknown")."""
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="unimplemented-ops")
    for call in (s3.get_bucket_replication, s3.get_bucket_website, s3.get_bucket_accelerate_configuration):
        with pytest.raises(ClientError) as ei:
            call(Bucket="unimplemented-ops")
        assert ei.value.response["Error"]["Code"] == "NotImplemented"
    for name in ("GetBucketReplication", "GetBucketWebsite", "GetBucketAccelerateConfiguration"):
        found = [detail(e) for e in events(srv, LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": name}])]
        assert found and all(d["errorCode"] == "NotImplemented" for d in found), (name, found)
        assert found[0]["requestParameters"]["bucketName"] == "unimplemented-ops", found[0]
