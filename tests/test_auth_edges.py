"""AWS's answers at the edges of authentication, as real S3 gives them: an empty
Authorization header is an anonymous request; malformed headers are InvalidArgument or
AuthorizationHeaderMalformed; a missing or unparsable date is AccessDenied; a request more
than 15 minutes off is RequestTimeTooSkewed (with RequestTime, ServerTime and
MaxAllowedSkewMilliseconds, checked before the signature); presigned URLs with X-Amz-Expires
beyond a week, negative or not a number are AuthorizationQueryParametersError, expired or
not yet valid ones AccessDenied; a signature in upper-case hex is SignatureDoesNotMatch with
AWS's message. None of these changes anything."""

import datetime
import http.client
import time
import unittest.mock
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest

import s3raw


def send(server, method, path, headers):
    u = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def error(body):
    return {c.tag: c.text for c in ET.fromstring(body)}


@pytest.fixture
def bucket_url(shared_server):
    s3 = shared_server.client()
    b = f"auth-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"secret")
    return s3, b, f"/{b}/k"


def signed(server, path, when=None, method="GET"):
    return s3raw.sign(method, server.endpoint + path, when=when)


def test_header_authentication_edges(shared_server, bucket_url):
    s3, b, path = bucket_url
    ok = signed(shared_server, path)
    assert send(shared_server, "GET", path, ok) == (200, b"secret")

    # An empty Authorization header is an unsigned request: evaluated, here refused.
    status, body = send(shared_server, "GET", path, {"Authorization": ""})
    assert (status, error(body)["Code"], error(body)["Message"]) == (403, "AccessDenied", "Access Denied")

    for auth, code, message in [
        ("garbage", "InvalidArgument", "Authorization header is invalid -- one and only one ' ' (space) required."),
        ("AWS4 HAHAHA", "InvalidArgument", "Unsupported Authorization Type"),
        ("AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed",
         "The authorization header is malformed; the authorization header requires three components: "
         "Credential, SignedHeaders, and Signature."),
    ]:
        status, body = send(shared_server, "GET", path, {**ok, "Authorization": auth})
        e = error(body)
        assert (status, e["Code"], e["Message"]) == (400, code, message), auth
        assert e["RequestId"]

    # No date at all: AccessDenied, in AWS's words.
    no_date = {k: v for k, v in ok.items() if k.lower() != "x-amz-date"}
    status, body = send(shared_server, "GET", path, no_date)
    assert (status, error(body)["Message"]) == (403, "AWS authentication requires a valid Date or x-amz-date header")

    # Far from now: RequestTimeTooSkewed, whether or not the signature is right.
    past = s3raw.utcnow() - datetime.timedelta(minutes=20)
    skewed = signed(shared_server, path, when=past)
    for headers in (skewed, {**skewed, "Authorization": skewed["Authorization"][:-4] + "0000"}):
        status, body = send(shared_server, "GET", path, headers)
        e = error(body)
        assert (status, e["Code"]) == (403, "RequestTimeTooSkewed"), body
        assert e["Message"] == "The difference between the request time and the current time is too large."
        assert e["RequestTime"] == headers["X-Amz-Date"]
        assert e["MaxAllowedSkewMilliseconds"] == "900000"
        server_time = datetime.datetime.strptime(e["ServerTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert abs((server_time - s3raw.utcnow()).total_seconds()) < 60
    # Ten minutes off is within the allowed skew.
    near = signed(shared_server, path, when=s3raw.utcnow() - datetime.timedelta(minutes=10))
    assert send(shared_server, "GET", path, near) == (200, b"secret")

    # A signature in upper-case hex never matches.
    sig = ok["Authorization"].rsplit("Signature=", 1)[1]
    upper = {**ok, "Authorization": ok["Authorization"].replace(sig, sig.upper())}
    status, body = send(shared_server, "GET", path, upper)
    e = error(body)
    assert (status, e["Code"]) == (403, "SignatureDoesNotMatch")
    assert e["Message"] == ("The request signature we calculated does not match the signature you provided. "
                            "Check your key and signing method.")
    # A refused PUT stores nothing.
    put_path = f"/{b}/refused"
    put = s3raw.sign("PUT", shared_server.endpoint + put_path, when=past)
    assert send(shared_server, "PUT", put_path, put)[0] == 403
    assert s3.list_objects_v2(Bucket=b, Prefix="refused").get("KeyCount") == 0


def presign(s3, b, expires):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=expires)
    return url[url.index("/", len("http://")):]


def test_presigned_url_edges(shared_server, bucket_url):
    _, b, _ = bucket_url
    s3 = shared_server.client(signature_version="s3v4")
    assert send(shared_server, "GET", presign(s3, b, 604800), {}) == (200, b"secret")
    for expires, message in [
        ("604801", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
                   "less than 604800 seconds"),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
    ]:
        path = presign(s3, b, 3600).replace("X-Amz-Expires=3600", f"X-Amz-Expires={expires}")
        status, body = send(shared_server, "GET", path, {})
        e = error(body)
        assert (status, e["Code"], e["Message"]) == (400, "AuthorizationQueryParametersError", message), expires
    path = presign(s3, b, 1)
    time.sleep(2.1)
    status, body = send(shared_server, "GET", path, {})
    e = error(body)
    assert (status, e["Code"], e["Message"], e["X-Amz-Expires"]) == (403, "AccessDenied", "Request has expired", "1")
    # Signed for a time an hour ahead: not yet valid.
    ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=ahead.replace(tzinfo=None)):
        future = presign(s3, b, 3600)
    status, body = send(shared_server, "GET", future, {})
    assert (status, error(body)["Message"]) == (403, "Request is not yet valid")
    upper = presign(s3, b, 3600)
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(upper).query)["X-Amz-Signature"][0]
    upper = upper.replace(sig, sig.upper())
    status, body = send(shared_server, "GET", upper, {})
    assert (status, error(body)["Code"]) == (403, "SignatureDoesNotMatch")
    missing = presign(s3, b, 3600).replace("X-Amz-Date=", "X-Amz-Datx=")
    status, body = send(shared_server, "GET", missing, {})
    assert (status, error(body)["Code"]) == (400, "AuthorizationQueryParametersError")


def test_plain_chunked_uploads_are_not_implemented_as_on_aws(shared_server, bucket_url):
    """S3 refuses a body in HTTP chunked transfer coding unless it is aws-chunked with its
    decoded length: 501 NotImplemented naming the header. Nothing is stored."""
    import subprocess

    s3, b, _ = bucket_url
    url = shared_server.client(signature_version="s3v4").generate_presigned_url(
        "put_object", Params={"Bucket": b, "Key": "chunked"})
    p = subprocess.run(["curl", "-s", "-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", "abc",
                        "-w", "\n%{http_code}", url], capture_output=True, text=True, check=True)
    body, _, status = p.stdout.rpartition("\n")
    e = error(body.encode())
    assert (status, e["Code"], e["Header"]) == ("501", "NotImplemented", "Transfer-Encoding")
    assert e["Message"] == "A header you provided implies functionality that is not implemented"
    assert s3.list_objects_v2(Bucket=b, Prefix="chunked").get("KeyCount") == 0
