"""The web console over HTTP (requests, as a browser would send them): what it shows and
does is exactly what the signed-in principal's policies allow, with AWS's refusal text;
a state-changing request without this session's CSRF token, or with another session's
cookie, is refused and changes nothing; sessions end when idle; and the key impact
report counts what a listing under each key finds, for a bucket of 10,000 objects across
two keys. (The walk through the pages in a real browser is test_console_browser.py.)"""

import concurrent.futures
import json
import re
import time

import pytest
import requests

from conftest import ACCESS_KEY, SECRET_KEY, Server


class Console:
    """One browser: its cookie jar and the CSRF token of its session."""

    def __init__(self, server, access_key=ACCESS_KEY, secret=SECRET_KEY):
        self.base = server.endpoint + "/_coffer/console"
        self.http = requests.Session()
        r = self.http.post(self.base + "/sign-in", allow_redirects=False,
                           data={"access_key_id": access_key, "secret_access_key": secret})
        assert r.status_code == 303, (r.status_code, r.text[:500])
        page = self.get("/buckets")
        self.csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def get(self, path, **kw):
        return self.http.get(self.base + path, **kw)

    def post(self, path, data, **kw):
        return self.http.post(self.base + path, data=data, allow_redirects=False, **kw)


def alerts(r):
    return " ".join(re.sub(r"<[^>]+>", "", a) for a in re.findall(r'role="alert">(.*?)</div>', r.text, re.S))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("console"), extra_args=["--console-idle-minutes", "0.05"]).start()
    yield s
    s.stop()


def test_a_user_limited_to_one_bucket_sees_and_does_only_that(srv):
    root = srv.client()
    for b in ("team-a-data", "team-b-data"):
        root.create_bucket(Bucket=b)
        root.put_object(Bucket=b, Key=f"{b}.txt", Body=b"seed")
    iam = srv.client("iam")
    iam.create_user(UserName="ann")
    iam.put_user_policy(UserName="ann", PolicyName="one-bucket", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*",
                       "Resource": ["arn:aws:s3:::team-a-data", "arn:aws:s3:::team-a-data/*"]}],
    }))
    k = iam.create_access_key(UserName="ann")["AccessKey"]
    ann = Console(srv, k["AccessKeyId"], k["SecretAccessKey"])

    # The bucket list: ListBuckets is denied (AWS's words shown), and only the bucket she
    # can open is listed.
    page = ann.get("/buckets")
    assert page.status_code == 200
    assert "AccessDenied" in alerts(page) and "s3:ListAllMyBuckets" in alerts(page), alerts(page)
    listed = re.findall(r'href="/_coffer/console/buckets/([a-z0-9.-]+)"', page.text)
    assert listed == ["team-a-data"], listed

    # Her bucket works; the other one, the KMS and the audit trail answer AWS's refusals.
    assert "team-a-data.txt" in ann.get("/buckets/team-a-data").text
    other = ann.get("/buckets/team-b-data")
    assert other.status_code == 403
    assert "AccessDenied" in alerts(other)
    assert "is not authorized to perform: s3:ListBucket" in alerts(other), alerts(other)
    assert ann.get("/buckets/team-b-data/download?key=team-b-data.txt").status_code == 403
    keys = ann.get("/keys")
    assert keys.status_code == 400 or keys.status_code == 403, keys.status_code
    assert "AccessDenied" in alerts(keys) and "kms:ListKeys" in alerts(keys), alerts(keys)
    audit = ann.get("/audit")
    assert "AccessDenied" in alerts(audit) and "cloudtrail:LookupEvents" in alerts(audit)

    # Writes: allowed in her bucket, refused elsewhere, and the refusal changes nothing.
    up = ann.http.put(ann.base + "/buckets/team-a-data/upload?key=by-ann.txt", data=b"hello",
                      headers={"x-coffer-csrf": ann.csrf})
    assert up.status_code == 200, up.text
    assert root.get_object(Bucket="team-a-data", Key="by-ann.txt")["Body"].read() == b"hello"
    up = ann.http.put(ann.base + "/buckets/team-b-data/upload?key=by-ann.txt", data=b"hello",
                      headers={"x-coffer-csrf": ann.csrf})
    assert up.status_code == 403 and up.json()["code"] == "AccessDenied", up.text
    made = ann.post("/buckets", {"csrf": ann.csrf, "name": "ann-new-bucket", "sse": "AES256"})
    assert made.status_code == 403 and "AccessDenied" in alerts(made)
    assert "ann-new-bucket" not in [b["Name"] for b in root.list_buckets()["Buckets"]]
    gone = ann.post("/buckets/team-b-data/delete-object", {"csrf": ann.csrf, "key": "team-b-data.txt"})
    assert gone.status_code == 403
    assert root.get_object(Bucket="team-b-data", Key="team-b-data.txt")["Body"].read() == b"seed"


def test_requests_without_this_sessions_csrf_token_are_refused_and_change_nothing(srv):
    first, second = Console(srv), Console(srv)
    assert first.csrf != second.csrf
    root = srv.client()

    attempts = [
        # No token at all.
        lambda: first.post("/buckets", {"name": "csrf-none", "sse": "AES256"}),
        # A wrong one.
        lambda: first.post("/buckets", {"csrf": "forged", "name": "csrf-forged", "sse": "AES256"}),
        # Another session's token with this session's cookie (and the other way round).
        lambda: first.post("/buckets", {"csrf": second.csrf, "name": "csrf-crossed", "sse": "AES256"}),
        lambda: second.post("/buckets", {"csrf": first.csrf, "name": "csrf-crossed2", "sse": "AES256"}),
    ]
    for attempt in attempts:
        r = attempt()
        assert r.status_code == 403, r.status_code
        assert "InvalidCsrfToken" in alerts(r)
    # Uploads carry the token in a header.
    r = first.http.put(first.base + "/buckets/x/upload?key=k", data=b"x", headers={"x-coffer-csrf": second.csrf})
    assert r.status_code == 403
    # A forged sign-out does not end the session either.
    assert first.post("/sign-out", {"csrf": second.csrf}).status_code == 403
    assert first.get("/buckets").status_code == 200
    names = [b["Name"] for b in root.list_buckets()["Buckets"]]
    assert not [n for n in names if n.startswith("csrf-")], names

    # Without a session cookie there is no page at all, and a write is refused as
    # signed out.
    anon = requests.Session()
    r = anon.get(first.base + "/buckets", allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/sign-in")
    r = anon.post(first.base + "/buckets", data={"csrf": first.csrf, "name": "csrf-anon"}, allow_redirects=False)
    assert r.status_code == 401
    # The same token is accepted where it belongs.
    ok = first.post("/buckets", {"csrf": first.csrf, "name": "csrf-proper", "sse": "AES256"})
    assert ok.status_code == 303, ok.text[:300]
    assert "csrf-proper" in [b["Name"] for b in root.list_buckets()["Buckets"]]


def test_an_idle_session_ends(srv):
    c = Console(srv)
    # The server runs with --console-idle-minutes 0.05 (3 s of idleness).
    assert c.get("/buckets", allow_redirects=False).status_code == 200
    time.sleep(3.5)
    r = c.get("/buckets", allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/sign-in")


def test_the_impact_report_counts_what_a_listing_under_each_key_finds(srv):
    """10,000 objects in one bucket under two keys (the bucket's default, with a bucket
    key, and another named per request) and a second bucket, counted by the report and by
    listing and HEAD-ing every object."""
    root = srv.client()
    kms = srv.client("kms")
    key_a = kms.create_key(Description="impact a")["KeyMetadata"]["KeyId"]
    key_b = kms.create_key(Description="impact b")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/impact-a", TargetKeyId=key_a)
    bucket = "impact-10k"
    root.create_bucket(Bucket=bucket)
    root.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/impact-a"},
        "BucketKeyEnabled": True}]})
    other = "impact-other"
    root.create_bucket(Bucket=other)

    def put(i):
        c = clients[i % len(clients)]
        kw = {}
        if i % 3 == 0:
            kw = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_b, "BucketKeyEnabled": True}
        c.put_object(Bucket=bucket, Key=f"obj/{i:05d}", Body=b"x" * (i % 97), **kw)

    clients = [srv.client() for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(10_000)))
    # Another bucket: an SSE-S3 object counts for neither key, one under key b counts.
    root.put_object(Bucket=other, Key="s3-managed", Body=b"sse-s3")
    root.put_object(Bucket=other, Key="under-b", Body=b"bbbb", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_b)

    # What a listing finds: every object, HEAD-ed for its key.
    def key_of(args):
        b, k = args
        h = clients[hash(k) % len(clients)].head_object(Bucket=b, Key=k)
        return h.get("SSEKMSKeyId", ""), h["ContentLength"], b
    listed = []
    for b in (bucket, other):
        for page in root.get_paginator("list_objects_v2").paginate(Bucket=b):
            listed += [(b, o["Key"]) for o in page.get("Contents", [])]
    assert len(listed) == 10_002
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        found = list(pool.map(key_of, listed))
    expect = {}
    for key in (key_a, key_b):
        per_bucket = {}
        for arn, size, b in found:
            if arn.endswith("/" + key):
                n, s = per_bucket.get(b, (0, 0))
                per_bucket[b] = (n + 1, s + size)
        expect[key] = per_bucket
    assert sum(n for n, _ in expect[key_a].values()) == 6_666
    assert sum(n for n, _ in expect[key_b].values()) == 3_334 + 1

    c = Console(srv)
    for key in (key_a, key_b):
        started = time.monotonic()
        r = c.get(f"/keys/{key}/impact")
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        report = r.json()
        got = {b["bucket"]: (b["objects"], b["bytes"]) for b in report["buckets"] if b["objects"]}
        assert got == expect[key], (key, got, expect[key])
        assert report["objects"] == sum(n for n, _ in expect[key].values())
        defaults = {b["bucket"] for b in report["buckets"] if b["defaultKey"]}
        assert defaults == ({bucket} if key == key_a else set())
        print(f"impact report of {report['objects']} objects over 10,002: "
              f"{report['elapsedMs']:.0f} ms counting, {took * 1000:.0f} ms the whole request")
    # The page shows the same count.
    page = c.get(f"/keys/{key_a}/confirm?action=disable")
    assert re.search(r'<strong class="objects">6666</strong>', page.text), page.text[:2000]
