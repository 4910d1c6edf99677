"""CORS: Put/Get/DeleteBucketCors with boto3 and the aws CLI (S3's checks of a
configuration, in S3's words), browsers' preflight OPTIONS answered from the rules without
authentication (S3's AccessForbidden refusals, the headers of an allowed preflight), and the
Access-Control-* headers on actual requests — successes and errors — whose origin and method
a rule allows. The browser side is tests/test_cors_browser.py."""

import json
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def raw(server, method, path, headers=None):
    """An unsigned request; returns (status, headers lower-cased, body)."""
    req = urllib.request.Request(server.endpoint + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def error_of(body):
    root = ET.fromstring(body)
    return {c.tag: c.text for c in root}


RULES = [
    {
        "ID": "uploads",
        "AllowedOrigins": ["https://app.example.com"],
        "AllowedMethods": ["PUT", "POST"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag", "x-amz-version-id"],
        "MaxAgeSeconds": 600,
    },
    {"AllowedOrigins": ["http://*.example.org"], "AllowedMethods": ["GET", "HEAD"]},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]


def test_cors_configuration_round_trips_and_bad_ones_change_nothing(shared_server):
    s3 = shared_server.client()
    b = f"cors-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    assert err(s3.get_bucket_cors, Bucket=b) == (404, "NoSuchCORSConfiguration", "The CORS configuration does not exist")
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": RULES})
    assert s3.get_bucket_cors(Bucket=b)["CORSRules"] == RULES
    bad = [
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}],
         (400, "InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH")),
        ([{"AllowedOrigins": ["http://*.*.example"], "AllowedMethods": ["GET"]}],
         (400, "InvalidRequest", 'AllowedOrigin "http://*.*.example" can not have more than one wildcard.')),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*-*"]}],
         (400, "InvalidRequest", 'AllowedHeader "*-*" can not have more than one wildcard.')),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "ExposeHeaders": ["x-amz-meta-*"]}],
         (400, "InvalidRequest", 'ExposeHeader "x-amz-meta-*" contains wildcard. We currently do not support wildcard for ExposeHeader.')),
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101,
         (400, "InvalidRequest", "The number of CORS rules should not exceed allowed limit of 100 rules.")),
    ]
    for rules, expected in bad:
        assert err(s3.put_bucket_cors, Bucket=b, CORSConfiguration={"CORSRules": rules}) == expected
    assert err(s3.put_bucket_cors, Bucket=b, CORSConfiguration={"CORSRules": []})[:2] == (400, "MalformedXML")
    assert s3.get_bucket_cors(Bucket=b)["CORSRules"] == RULES, "a refused configuration changed nothing"
    r = s3.delete_bucket_cors(Bucket=b)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err(s3.get_bucket_cors, Bucket=b)[:2] == (404, "NoSuchCORSConfiguration")
    assert err(s3.put_bucket_cors, Bucket=f"{b}-none", CORSConfiguration={"CORSRules": RULES})[:2] == (404, "NoSuchBucket")


def test_cors_with_the_aws_cli(shared_server, tmp_path):
    b = f"cors-cli-{uuid.uuid4().hex[:8]}"
    shared_server.aws("s3api", "create-bucket", "--bucket", b)
    f = tmp_path / "cors.json"
    f.write_text(json.dumps({"CORSRules": RULES[:1]}))
    shared_server.aws("s3api", "put-bucket-cors", "--bucket", b, "--cors-configuration", f"file://{f}")
    got = shared_server.aws("s3api", "get-bucket-cors", "--bucket", b, expect_json=True)
    assert got["CORSRules"] == RULES[:1]
    shared_server.aws("s3api", "delete-bucket-cors", "--bucket", b)
    p = shared_server.aws("s3api", "get-bucket-cors", "--bucket", b, check=False)
    assert p.returncode != 0 and "NoSuchCORSConfiguration" in p.stderr


def test_cors_needs_its_permissions(shared_server):
    s3 = shared_server.client()
    iam = shared_server.client("iam")
    b = f"cors-perm-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    user = f"u{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetBucketCORS", "Resource": f"arn:aws:s3:::{b}"}],
    }))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    u = shared_server.client(access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert err(u.put_bucket_cors, Bucket=b, CORSConfiguration={"CORSRules": RULES})[:2] == (403, "AccessDenied")
    assert err(u.delete_bucket_cors, Bucket=b)[:2] == (403, "AccessDenied")
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": RULES})
    assert u.get_bucket_cors(Bucket=b)["CORSRules"] == RULES


def test_preflight_is_answered_from_the_rules(shared_server):
    s3 = shared_server.client()
    b = f"cors-pre-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)

    # No Origin: a bad request, even for a bucket that does not exist.
    status, _, body = raw(shared_server, "OPTIONS", f"/{b}-none/k", {"Access-Control-Request-Method": "GET"})
    assert status == 400
    assert error_of(body)["Code"] == "BadRequest"
    assert error_of(body)["Message"] == "Insufficient information. Origin request header needed."

    ask = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"}
    status, _, body = raw(shared_server, "OPTIONS", f"/{b}-none/k", ask)
    assert status == 403
    assert error_of(body)["Message"] == "CORSResponse: Bucket not found"

    status, headers, body = raw(shared_server, "OPTIONS", f"/{b}/k", ask)
    e = error_of(body)
    assert status == 403, body
    assert (e["Code"], e["Message"], e["Method"], e["ResourceType"]) == (
        "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", "PUT", "BUCKET")
    assert e["RequestId"]
    assert not any(h.startswith("access-control-") for h in headers)

    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": RULES})
    status, h, body = raw(shared_server, "OPTIONS", f"/{b}/photos/a.jpg",
                          {**ask, "Access-Control-Request-Headers": "Content-Type, X-Amz-Date,x-amz-meta-owner"})
    assert status == 200, body
    assert body == b""
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-methods"] == "PUT, POST"
    assert h["access-control-allow-headers"] == "content-type, x-amz-date, x-amz-meta-owner"
    assert h["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert h["access-control-max-age"] == "600"
    assert h["vary"] == "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

    # A wildcard origin rule answers '*' and no credentials.
    status, h, _ = raw(shared_server, "OPTIONS", f"/{b}/a",
                       {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "GET"})
    assert status == 200
    assert h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h
    assert h["access-control-allow-methods"] == "GET"

    # One wildcard in an origin pattern stands for any run of characters.
    status, h, _ = raw(shared_server, "OPTIONS", f"/{b}/a",
                       {"Origin": "http://cdn.example.org", "Access-Control-Request-Method": "HEAD"})
    assert status == 200 and h["access-control-allow-origin"] == "http://cdn.example.org"

    # What no rule allows: a method, an origin, a header.
    for refused in [
        {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
        {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "PUT"},
        {**ask, "Access-Control-Request-Headers": "authorization"},
        {"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "GET",
         "Access-Control-Request-Headers": "x-custom"},
    ]:
        status, h, body = raw(shared_server, "OPTIONS", f"/{b}/photos/a.jpg", refused)
        e = error_of(body)
        assert status == 403, refused
        assert e["Code"] == "AccessForbidden"
        assert e["Message"].startswith("CORSResponse: This CORS request is not allowed.")
        assert e["Method"] == refused["Access-Control-Request-Method"]
        assert e["ResourceType"] == "OBJECT"
        assert "access-control-allow-origin" not in h
    status, _, body = raw(shared_server, "OPTIONS", f"/{b}",
                          {"Origin": "https://evil.example.net", "Access-Control-Request-Method": "PUT"})
    assert status == 403 and error_of(body)["ResourceType"] == "BUCKET"


def test_actual_requests_carry_the_headers_of_the_rule_that_allows_them(shared_server):
    s3 = shared_server.client()
    b = f"cors-act-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"})
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "nope"})
    path = url[len(shared_server.endpoint):]

    # Without a configuration: nothing added.
    status, h, body = raw(shared_server, "GET", path, {"Origin": "http://cdn.example.org"})
    assert status == 200 and body == b"hello"
    assert "access-control-allow-origin" not in h and "vary" not in h

    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": RULES})
    status, h, body = raw(shared_server, "GET", path, {"Origin": "http://cdn.example.org"})
    assert status == 200 and body == b"hello"
    assert h["access-control-allow-origin"] == "http://cdn.example.org"
    assert h["access-control-allow-methods"] == "GET, HEAD"
    assert h["vary"] == "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
    # Errors carry them too, so that the page can read the failure.
    status, h, _ = raw(shared_server, "GET", missing[len(shared_server.endpoint):], {"Origin": "http://cdn.example.org"})
    assert status == 404 and h["access-control-allow-origin"] == "http://cdn.example.org"
    # A method no rule allows for the origin: the request proceeds, without CORS headers.
    status, h, _ = raw(shared_server, "GET", path, {"Origin": "https://app.example.com"})
    assert status == 200 and h["access-control-allow-origin"] == "*", "the third rule allows GET from anywhere"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "p"})
    status, h, _ = raw(shared_server, "PUT", put[len(shared_server.endpoint):], {"Origin": "http://cdn.example.org"})
    assert status == 200
    assert "access-control-allow-origin" not in h
    assert s3.get_object(Bucket=b, Key="p")["Body"].read() == b""
    # Without Origin: nothing.
    status, h, _ = raw(shared_server, "GET", path)
    assert status == 200 and "access-control-allow-origin" not in h
