"""S3 server access logging: Put/GetBucketLogging with boto3 and the aws CLI, S3's checks of
a target, and the records delivered into the target bucket — parsed here by the regular
expression AWS publishes for reading these logs with Athena ("Querying Amazon S3 server
access logs"), an independent reading of AWS's documented format — with the documented key
formats, and delivered only where the target's policy lets the logging service write."""

import json
import re
import tempfile
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import Server, after_passes

# AWS's RegexSerDe input.regex for server access logs, with the DDL's escaping removed.
ATHENA = re.compile(
    r'([^ ]*) ([^ ]*) \[(.*?)\] ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) (-|[0-9]*) ([^ ]*) ([^ ]*) '
    r'([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ("[^"]*"|-) ([^ ]*)(?: ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*) '
    r'([^ ]*) ([^ ]*))?.*$'
)
COLUMNS = [
    "bucketowner", "bucket_name", "requestdatetime", "remoteip", "requester", "requestid", "operation", "key",
    "request_uri", "httpstatus", "errorcode", "bytessent", "objectsize", "totaltime", "turnaroundtime",
    "referrer", "useragent", "versionid", "hostid", "sigv", "ciphersuite", "authtype", "endpoint", "tlsversion",
    "accesspointarn", "aclrequired",
]


def parse(line):
    m = ATHENA.match(line)
    assert m, line
    return dict(zip(COLUMNS, m.groups()))


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-logs-") as d:
        s = Server(d, env={"COFFER_S3_ACCESS_LOG_SECONDS": "0.3"}).start()
        yield s
        s.stop()


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def delivery_policy(target, prefix, source, account):
    """AWS's recommended target-bucket policy for server access logs."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "S3ServerAccessLogsPolicy", "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": ["s3:PutObject"],
        "Resource": f"arn:aws:s3:::{target}/{prefix}*",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                      "StringEquals": {"aws:SourceAccount": account}}}]})


def records(s3, bucket, prefix, want, timeout=15):
    """The delivered records under `prefix`, once at least `want` have arrived (`want`: a
    count, or a test of the records)."""
    deadline = time.time() + timeout
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        lines = []
        for k in keys:
            lines += s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode().splitlines()
        parsed = [parse(l) for l in lines]
        done = want(parsed) if callable(want) else len(parsed) >= want
        if done or time.time() > deadline:
            return keys, parsed
        time.sleep(0.2)


def test_records_are_delivered_in_aws_s_format(srv):
    s3 = srv.client()
    account = srv.client("sts").get_caller_identity()["Account"]
    owner = s3.list_buckets()["Owner"]["ID"]
    src, logs = f"src-{uuid.uuid4().hex[:8]}", f"logs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(Bucket=logs, Policy=delivery_policy(logs, "access/", src, account))
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": logs, "TargetPrefix": "access/"}})
    got = s3.get_bucket_logging(Bucket=src)["LoggingEnabled"]
    assert (got["TargetBucket"], got["TargetPrefix"]) == (logs, "access/")

    put = s3.put_object(Bucket=src, Key="dir/a b.txt", Body=b"0123456789")
    get = s3.get_object(Bucket=src, Key="dir/a b.txt")
    assert get["Body"].read() == b"0123456789"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=src, Key="missing")
    missing_id = e.value.response["ResponseMetadata"]["RequestId"]
    s3.list_objects_v2(Bucket=src)
    presigned = srv.client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": src, "Key": "dir/a b.txt"})
    assert urllib.request.urlopen(presigned).read() == b"0123456789"
    with pytest.raises(urllib.error.HTTPError) as anon:
        urllib.request.urlopen(f"{srv.endpoint}/{src}/dir/a%20b.txt")
    assert anon.value.code == 403

    keys, recs = records(s3, logs, "access/", 6)
    assert keys and all(re.fullmatch(r"access/\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-Z]{16}", k) for k in keys), keys
    by_op = {}
    for r in recs:
        by_op.setdefault(r["operation"], []).append(r)
        assert r["bucketowner"] == owner and r["bucket_name"] == src, r
        assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", r["requestdatetime"]), r
        assert r["remoteip"] == "127.0.0.1"
        assert r["hostid"] == "-" and r["accesspointarn"] == "-"
    p = by_op["REST.PUT.OBJECT"][0]
    assert p["requestid"] == put["ResponseMetadata"]["RequestId"]
    assert p["requester"] == owner, "an account's root user is named by its canonical id"
    assert p["key"] == "dir/a%20b.txt"
    assert p["request_uri"].startswith('"PUT /') and p["request_uri"].endswith(' HTTP/1.1"')
    assert (p["httpstatus"], p["errorcode"], p["objectsize"]) == ("200", "-", "10")
    assert (p["sigv"], p["authtype"]) == ("SigV4", "AuthHeader")
    assert "Boto3" in p["useragent"] or "botocore" in p["useragent"], p["useragent"]
    g = [r for r in by_op["REST.GET.OBJECT"] if r["httpstatus"] == "200"][0]
    assert g["requestid"] == get["ResponseMetadata"]["RequestId"]
    assert (g["bytessent"], g["objectsize"]) == ("10", "10")
    m = [r for r in by_op["REST.GET.OBJECT"] if r["requestid"] == missing_id][0]
    assert (m["httpstatus"], m["errorcode"], m["key"]) == ("404", "NoSuchKey", "missing")
    assert by_op["REST.GET.BUCKET"][0]["key"] == "-"
    q = [r for r in by_op["REST.GET.OBJECT"] if r["authtype"] == "QueryString"][0]
    assert "X-Amz-Signature=REDACTED" in q["request_uri"] and "X-Amz-Credential=" in q["request_uri"]
    assert presigned.split("X-Amz-Signature=")[1][:16] not in q["request_uri"], "no replayable signature"
    a = [r for r in by_op["REST.GET.OBJECT"] if r["httpstatus"] == "403"][0]
    assert (a["requester"], a["errorcode"], a["sigv"], a["authtype"]) == ("-", "AccessDenied", "-", "-")
    # Logging stops when turned off.
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)


def test_partitioned_keys_and_checks_of_the_target(srv):
    s3 = srv.client()
    account = srv.client("sts").get_caller_identity()["Account"]
    src, logs = f"psrc-{uuid.uuid4().hex[:8]}", f"plogs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(Bucket=logs, Policy=delivery_policy(logs, "p/", src, account))
    assert err(s3.put_bucket_logging, Bucket=src, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": f"{logs}-none", "TargetPrefix": "p/"}}) == \
        (400, "InvalidTargetBucketForLogging", "The target bucket for logging does not exist")
    assert err(s3.put_bucket_logging, Bucket=src, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": logs, "TargetPrefix": "p/",
        "TargetGrants": [{"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                          "Permission": "READ"}]}}) == \
        (400, "AccessControlListNotSupported", "Target grants not allowed for bucket owner enforced buckets")
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": logs, "TargetPrefix": "p/",
        "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}}})
    fmt = s3.get_bucket_logging(Bucket=src)["LoggingEnabled"]["TargetObjectKeyFormat"]
    assert fmt == {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    s3.put_object(Bucket=src, Key="k", Body=b"x")
    keys, recs = records(s3, logs, "p/", 2)
    day = time.strftime("%Y/%m/%d", time.gmtime())
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    assert keys and all(
        re.fullmatch(rf"p/{account}/us-east-1/{src}/{day}/{stamp}-00-00-00-[0-9A-Z]{{16}}", k) for k in keys), keys
    # Everything after logging was turned on, the configuration read included.
    assert sorted(r["operation"] for r in recs) == ["REST.GET.LOGGING_STATUS", "REST.PUT.OBJECT"]


def test_records_are_not_delivered_where_the_target_refuses_them(srv):
    s3 = srv.client()
    src, logs = f"nsrc-{uuid.uuid4().hex[:8]}", f"nlogs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=logs)
    # No policy for the logging service: accepted (AWS checks at delivery), nothing arrives.
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": logs, "TargetPrefix": "x/"}})
    s3.put_object(Bucket=src, Key="k", Body=b"x")
    after_passes(srv, "access_logs")
    assert s3.list_objects_v2(Bucket=logs).get("KeyCount") == 0


def test_logging_with_the_aws_cli(srv, tmp_path):
    s3 = srv.client()
    account = srv.client("sts").get_caller_identity()["Account"]
    src, logs = f"csrc-{uuid.uuid4().hex[:8]}", f"clogs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=logs)
    s3.put_bucket_policy(Bucket=logs, Policy=delivery_policy(logs, "cli/", src, account))
    f = tmp_path / "logging.json"
    f.write_text(json.dumps({"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "cli/"}}))
    srv.aws("s3api", "put-bucket-logging", "--bucket", src, "--bucket-logging-status", f"file://{f}")
    got = srv.aws("s3api", "get-bucket-logging", "--bucket", src, expect_json=True)
    assert got["LoggingEnabled"]["TargetBucket"] == logs
    srv.aws("s3", "cp", str(f), f"s3://{src}/copied.json")
    def copied(recs):
        return any(r["operation"] == "REST.PUT.OBJECT" and r["key"] == "copied.json" and "aws-cli" in r["useragent"]
                   for r in recs)

    keys, recs = records(s3, logs, "cli/", copied)
    assert copied(recs), recs
