"""The web console over HTTP (requests, as a browser would send them): what it shows and
does is exactly what the signed-in principal's policies allow, with AWS's refusal text;
a state-changing request without this session's CSRF token, or with another session's
cookie, is refused and changes nothing; sessions end when idle; and the key impact
report counts what a listing under each key finds, for a bucket of 10,000 objects across
two keys. (The walk through the pages in a real browser is test_console_browser.py.)"""

import concurrent.futures
import json
import random
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
    r = first.http.put(first.base + "/buckets/csrf-upload/upload?key=k", data=b"x", headers={"x-coffer-csrf": second.csrf})
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
    key, and another named per request) and a second bucket, counted by the report and
    from a listing of every object under the key it was written with (a sample checked
    with HEAD)."""
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

    # What a listing finds: every object listed, under the key it was written with; a
    # seeded sample of 1,000 is HEAD-ed to check that the server says the same.
    written = {(bucket, f"obj/{i:05d}"): (key_b if i % 3 == 0 else key_a, i % 97) for i in range(10_000)}
    written[(other, "s3-managed")] = ("", 6)
    written[(other, "under-b")] = (key_b, 4)
    listed = []
    for b in (bucket, other):
        for page in root.get_paginator("list_objects_v2").paginate(Bucket=b):
            listed += [((b, o["Key"]), o["Size"]) for o in page.get("Contents", [])]
    assert len(listed) == 10_002
    assert all(written[k][1] == size for k, size in listed)

    def key_of(k):
        h = clients[hash(k[1]) % len(clients)].head_object(Bucket=k[0], Key=k[1])
        return h.get("SSEKMSKeyId", "").rsplit("/", 1)[-1]
    sample = random.Random(19).sample([k for k, _ in listed], 1_000)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(key_of, sample)) == [written[k][0] for k in sample]
    expect = {}
    for key in (key_a, key_b):
        per_bucket = {}
        for (b, k), size in listed:
            if written[(b, k)][0] == key:
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


def test_the_policy_editor_shows_the_servers_error_at_its_place_and_keeps_the_draft(srv):
    root = srv.client()
    root.create_bucket(Bucket="policy-editor")
    c = Console(srv)
    draft = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow" "Action": "s3:GetObject"}\n  ]\n}'
    r = c.post("/buckets/policy-editor/settings", {"csrf": c.csrf, "what": "policy", "policy": draft})
    assert r.status_code == 400
    assert "MalformedPolicy" in alerts(r)
    # The parser's place (line 4), shown under the line, and the draft kept for editing.
    m = re.search(r'<div class="position"><p>Line (\d+), column (\d+):</p><pre class="excerpt">(.*?)</pre>', r.text, re.S)
    assert m and m.group(1) == "4", r.text[:3000]
    assert "&quot;Effect&quot;: &quot;Allow&quot; &quot;Action&quot;" in m.group(3)
    assert "&quot;Action&quot;: &quot;s3:GetObject&quot;}" in r.text  # the textarea holds the draft
    with pytest.raises(Exception):
        root.get_bucket_policy(Bucket="policy-editor")
    # A valid one saves, and is what S3 then holds.
    good = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::policy-editor"}]})
    r = c.post("/buckets/policy-editor/settings", {"csrf": c.csrf, "what": "policy", "policy": good})
    assert r.status_code == 200 and "Bucket policy saved." in r.text
    assert json.loads(root.get_bucket_policy(Bucket="policy-editor")["Policy"]) == json.loads(good)


def test_the_policy_simulator_answers_as_iam_does(srv):
    iam = srv.client("iam")
    iam.create_user(UserName="sim")
    iam.put_user_policy(UserName="sim", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::sim-bucket/*"}]}))
    arn = iam.get_user(UserName="sim")["User"]["Arn"]
    expect = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject", "s3:PutObject"],
                                           ResourceArns=["arn:aws:s3:::sim-bucket/k"])["EvaluationResults"]
    c = Console(srv)
    r = c.get("/identities/simulate", params={"principal": arn, "actions": "s3:GetObject, s3:PutObject",
                                               "resources": "arn:aws:s3:::sim-bucket/k"})
    assert r.status_code == 200
    got = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"decision\">([^<]+)</td></tr>", r.text)
    assert got == [(e["EvalActionName"], e["EvalResourceName"], e["EvalDecision"]) for e in expect], got
    assert [d for _, _, d in got] == ["allowed", "implicitDeny"]


def test_usage_charts_count_the_trails_calls(tmp_path):
    s = Server(tmp_path, extra_args=["--usage-sample-seconds", "0.5"]).start()
    try:
        root, kms = s.client(), s.client("kms")
        root.create_bucket(Bucket="usage-chart")
        for i in range(7):
            root.put_object(Bucket="usage-chart", Key=f"k{i}", Body=b"x" * 1000)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(3):
            kms.encrypt(KeyId=key, Plaintext=b"p")
        account = s.client("sts").get_caller_identity()["Account"]
        c = Console(s)
        # The operator's root sees every account's buckets, each named with its account...
        deadline = time.monotonic() + 30
        while True:
            r = c.get("/usage?range=24h")
            assert r.status_code == 200
            # (Bucket usage is counted at most every 5 s: wait for a sample of all 7 PUTs.)
            if "usage-chart (%s): 6.8 KiB" % account in r.text or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert f'data-name="usage-chart ({account})"' in r.text
        # ... or one account's.
        r = c.get(f"/usage?range=24h&account={account}")
        bars = dict(re.findall(r'<rect class="bar"[^>]*data-name="([^"]+)" data-value="(\d+)"', r.text))
        assert bars["s3:PutObject"] == "7" and bars["kms:Encrypt"] == "3", bars
        assert bars["s3:CreateBucket"] == "1"
        # Per key: CreateKey and the three Encrypts name the key.
        assert bars[key] == "4", bars
        assert '<polyline class="series"' in r.text and 'data-name="usage-chart"' in r.text
        assert "6.8 KiB" in r.text  # 7,000 bytes stored, the legend's latest value
        # A user who may not read the trail sees CloudTrail's refusal instead.
        iam = s.client("iam")
        iam.create_user(UserName="nosee")
        k = iam.create_access_key(UserName="nosee")["AccessKey"]
        r = Console(s, k["AccessKeyId"], k["SecretAccessKey"]).get("/usage")
        assert "cloudtrail:LookupEvents" in alerts(r) and "<svg" not in r.text
    finally:
        s.stop()


def test_bad_names_and_other_sites_are_refused_and_change_nothing(srv):
    root = srv.client()
    root.create_bucket(Bucket="edge-cases")
    root.put_object(Bucket="edge-cases", Key="b/k", Body=b"kept")
    c = Console(srv)
    # An empty key names no object: it is never taken for the bucket.
    for path, data in (("/buckets/edge-cases/delete-object", {"csrf": c.csrf, "key": ""}),):
        r = c.post(path, data)
        assert r.status_code == 400 and "InvalidArgument" in alerts(r)
    r = c.http.put(c.base + "/buckets/edge-cases/upload?key=", data=b"x", headers={"x-coffer-csrf": c.csrf})
    assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
    assert c.get("/buckets/edge-cases/object?key=").status_code == 400
    # A path segment that is no bucket name names no bucket (no slash smuggled in).
    r = c.post("/buckets/edge-cases%2Fb/delete", {"csrf": c.csrf})
    assert r.status_code == 400
    assert root.head_bucket(Bucket="edge-cases")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert root.get_object(Bucket="edge-cases", Key="b/k")["Body"].read() == b"kept"
    # A browser's request from another site is refused, with the right token too, and so
    # is a sign-in posted from another site.
    r = c.post("/buckets", {"csrf": c.csrf, "name": "from-elsewhere", "sse": "AES256"},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/buckets", {"csrf": c.csrf, "name": "from-elsewhere", "sse": "AES256"},
               headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = requests.post(c.base + "/sign-in", allow_redirects=False, headers={"Origin": "http://evil.example"},
                      data={"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY})
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "from-elsewhere" not in [b["Name"] for b in root.list_buckets()["Buckets"]]
    # The same request from the console's own origin goes through.
    host = srv.endpoint.split("://", 1)[1]
    r = c.post("/buckets", {"csrf": c.csrf, "name": "from-here", "sse": "AES256"},
               headers={"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303


def test_objects_served_next_to_the_console_are_sandboxed(srv):
    root = srv.client()
    root.create_bucket(Bucket="pages")
    root.put_object(Bucket="pages", Key="p.html", Body=b"<script>1</script>", ContentType="text/html")
    url = root.generate_presigned_url("get_object", Params={"Bucket": "pages", "Key": "p.html"})
    r = requests.get(url)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert csp.startswith("sandbox") and "allow-same-origin" not in csp
    # The console's own pages carry their own policy instead.
    page = requests.get(srv.endpoint + "/_coffer/console/sign-in")
    assert "sandbox" not in page.headers["content-security-policy"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # Its script is named by hash: a .js object anyone uploads here is no script of it.
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert "script-src 'self'" not in page.headers["content-security-policy"]


def test_a_keys_deletion_is_scheduled_after_its_report_counted_down_and_cancelled(srv):
    kms = srv.client("kms")
    key = kms.create_key(Description="to delete")["KeyMetadata"]["KeyId"]
    c = Console(srv)
    confirm = c.get(f"/keys/{key}/confirm?action=delete")
    assert confirm.status_code == 200 and 'name="days"' in confirm.text
    assert re.search(r'<strong class="objects">0</strong>', confirm.text)
    r = c.post(f"/keys/{key}", {"csrf": c.csrf, "action": "schedule", "days": "7"})
    assert r.status_code == 200 and "Deletion scheduled for" in r.text
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    page = c.get(f"/keys/{key}").text
    deadline = float(re.search(r'data-deadline="([0-9.]+)"', page).group(1))
    assert abs(deadline - meta["DeletionDate"].timestamp()) < 1
    r = c.post(f"/keys/{key}", {"csrf": c.csrf, "action": "cancel"})
    assert r.status_code == 200 and "Deletion cancelled" in r.text
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    # A window outside 7 to 30 days is the KMS's ValidationException, and changes nothing.
    r = c.post(f"/keys/{key}", {"csrf": c.csrf, "action": "schedule", "days": "3"})
    assert r.status_code == 400 and "ValidationException" in alerts(r)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def test_the_audit_page_links_a_request_and_the_kms_calls_it_caused(srv):
    root, kms = srv.client(), srv.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    root.create_bucket(Bucket="audit-links")
    root.put_object(Bucket="audit-links", Key="linked", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    c = Console(srv)
    page = c.get("/audit", params={"attr": "ResourceName", "value": "arn:aws:s3:::audit-links/linked"}).text
    put = re.search(r'<a href="/_coffer/console/audit/event\?id=([^"]+)">[^<]+</a></td><td class="name">PutObject</td>', page)
    assert put, page[:3000]
    event = c.get("/audit/event", params={"id": put.group(1)}).text
    assert "What S3 asked the KMS for this request" in event
    kms_call = re.search(r'<li><a href="/_coffer/console/audit/event\?id=([^"]+)">GenerateDataKey</a></li>', event)
    assert kms_call, event[:3000]
    back = c.get("/audit/event", params={"id": kms_call.group(1)}).text
    assert f'class="caused-by" href="/_coffer/console/audit/event?id={put.group(1)}"' in back


def test_the_console_can_be_turned_off(tmp_path):
    s = Server(tmp_path, extra_args=["--console", "off"]).start()
    try:
        r = requests.get(s.endpoint + "/_coffer/console/sign-in", allow_redirects=False)
        # Nothing there but S3, which knows no such bucket.
        assert r.status_code in (400, 403, 404) and "<Error>" in r.text and "coffer-console" not in r.text
        s.client().create_bucket(Bucket="plain")
        s.client().put_object(Bucket="plain", Key="p.html", Body=b"<p>", ContentType="text/html")
        url = s.client().generate_presigned_url("get_object", Params={"Bucket": "plain", "Key": "p.html"})
        assert "content-security-policy" not in requests.get(url).headers
    finally:
        s.stop()
