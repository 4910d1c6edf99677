"""Scale-out: two `coffer serve` processes sharing one PostgreSQL database (`--meta`), one
blob directory (`--blobs`) and one root key, as two nodes behind a load balancer would.

What one node writes, the other serves; a KMS key disabled or an IAM policy changed through
one node is enforced by the other within a second (change notices); a node that cannot
hear those notices refuses requests rather than serve stale authorization.

PostgreSQL is real: COFFER_TEST_POSTGRES_URL (scripts/test starts a server if the machine
has none), else postgres://postgres@127.0.0.1:5432/test. Each test gets a schema of its
own."""

import base64
import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
import uuid
import urllib.request
import urllib.error
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import Server, psql, url_in

@contextlib.contextmanager
def deployment(schema, env=None, blobs=None):
    """Two nodes of one deployment: a shared database schema, blob directory, audit
    directory and root key; a data directory each."""
    root_key = base64.b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory(prefix="coffer-blobs-") as blob_dir, \
            tempfile.TemporaryDirectory(prefix="coffer-audit-") as audit, \
            tempfile.TemporaryDirectory(prefix="coffer-node-a-") as a_dir, \
            tempfile.TemporaryDirectory(prefix="coffer-node-b-") as b_dir:
        args = ["--meta", url_in(schema), "--blobs", blobs or blob_dir, "--audit-dir", audit,
                "--allow-insecure-sse-c"]
        env = {"COFFER_ROOT_KEY": root_key, **(env or {})}
        a = Server(Path(a_dir), extra_args=args, env=env).start()
        try:
            b = Server(Path(b_dir), extra_args=args, env=env).start()
            try:
                yield a, b
            finally:
                b.stop()
        finally:
            a.stop()


@pytest.fixture
def nodes(schema):
    with deployment(schema) as both:
        yield both


def until(check, within: float, what: str):
    """Polls `check` until it returns a true value; fails after `within` seconds. Returns
    the value and how long it took."""
    started = time.monotonic()
    while True:
        got = check()
        elapsed = time.monotonic() - started
        if got:
            return got, elapsed
        if elapsed > within:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.02)


def test_what_one_node_writes_the_other_serves(nodes):
    a, b = nodes
    sa, sb = a.client(), b.client()
    sa.create_bucket(Bucket="shared")
    # The bucket's default encryption (SSE-S3) applies to a header-less PUT.
    sa.put_object(Bucket="shared", Key="plain.txt", Body=b"written on a")
    got = sb.get_object(Bucket="shared", Key="plain.txt")
    assert got["Body"].read() == b"written on a"
    assert got["ServerSideEncryption"] == "AES256"

    key = a.client("kms").create_key()["KeyMetadata"]["KeyId"]
    sa.put_object(Bucket="shared", Key="kms.txt", Body=b"under a kms key",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    got = sb.get_object(Bucket="shared", Key="kms.txt")
    assert got["Body"].read() == b"under a kms key"
    assert got["SSEKMSKeyId"].endswith(key)

    customer_key = os.urandom(32)
    ssec = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key)
    sb.put_object(Bucket="shared", Key="ssec.bin", Body=b"customer keyed", **ssec)
    assert sa.get_object(Bucket="shared", Key="ssec.bin", **ssec)["Body"].read() == b"customer keyed"

    # A multipart upload started on a, its parts sent to both, completed on b.
    part = os.urandom(5 * 1024 * 1024)
    up = sa.create_multipart_upload(Bucket="shared", Key="big.bin",
                                    ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    e1 = sa.upload_part(Bucket="shared", Key="big.bin", UploadId=up["UploadId"], PartNumber=1, Body=part)["ETag"]
    e2 = sb.upload_part(Bucket="shared", Key="big.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"tail")["ETag"]
    sb.complete_multipart_upload(
        Bucket="shared", Key="big.bin", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert sa.get_object(Bucket="shared", Key="big.bin")["Body"].read() == part + b"tail"
    listed = [o["Key"] for o in sb.list_objects_v2(Bucket="shared")["Contents"]]
    assert listed == ["big.bin", "kms.txt", "plain.txt", "ssec.bin"]


def test_a_key_disabled_on_one_node_is_refused_by_the_other_within_a_second(nodes):
    a, b = nodes
    ka, kb = a.client("kms"), b.client("kms")
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    # b learns of the new key from the notice, not from a restart.
    until(lambda: _encrypts(kb, key), 1.0, "b knows a's new key")
    ka.disable_key(KeyId=key)
    _, took = until(lambda: not _encrypts(kb, key), 1.0, "b refuses the disabled key")
    print(f"disabled on a, refused by b after {took * 1000:.0f} ms")
    with pytest.raises(ClientError) as e:
        kb.encrypt(KeyId=key, Plaintext=b"x")
    assert e.value.response["Error"]["Code"] == "DisabledException"
    ka.enable_key(KeyId=key)
    until(lambda: _encrypts(kb, key), 1.0, "b uses the re-enabled key")


def _encrypts(kms, key) -> bool:
    try:
        kms.encrypt(KeyId=key, Plaintext=b"x")
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("DisabledException", "NotFoundException"):
            return False
        raise


def test_a_policy_changed_on_one_node_is_enforced_by_the_other_within_a_second(nodes):
    a, b = nodes
    ia = a.client("iam")
    a.client().create_bucket(Bucket="guarded")
    ia.create_user(UserName="alice")
    ia.put_user_policy(UserName="alice", PolicyName="read", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket",'
        '"Resource":"arn:aws:s3:::guarded"}]}'))
    creds = ia.create_access_key(UserName="alice")["AccessKey"]
    alice_on_b = b.client(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"])

    def lists() -> bool:
        try:
            alice_on_b.list_objects_v2(Bucket="guarded")
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("AccessDenied", "InvalidAccessKeyId"):
                return False
            raise

    until(lists, 1.0, "b knows alice and her policy")
    ia.put_user_policy(UserName="alice", PolicyName="deny", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}'))
    _, took = until(lambda: not lists(), 1.0, "b enforces the new deny")
    print(f"policy changed on a, enforced by b after {took * 1000:.0f} ms")
    ia.delete_user_policy(UserName="alice", PolicyName="deny")
    until(lists, 1.0, "b drops the deny")


def health(server) -> int:
    try:
        with urllib.request.urlopen(f"{server.endpoint}/_coffer/health", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_node_that_cannot_hear_changes_refuses_requests_until_it_can(nodes, schema):
    a, b = nodes
    # No retries: botocore retries a 503 (rightly: the node recovers by itself), and its
    # retry would land after the node recovered.
    sb = b.client(retries={"total_max_attempts": 1, "mode": "standard"})
    sb.create_bucket(Bucket="bee-one")
    assert sb.list_objects_v2(Bucket="bee-one")["KeyCount"] == 0
    assert health(b) == 200
    # Cut every node's notice session (as a database restart or a network failure does).
    psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
         "WHERE application_name = 'coffer-changes' AND datname = current_database()")
    until(lambda: health(b) == 503, 2.0, "b reports itself unavailable")
    with pytest.raises(ClientError) as e:
        sb.list_objects_v2(Bucket="bee-one")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
    # It listens again, reloads, and serves.
    until(lambda: health(b) == 200, 10.0, "b serves again")
    assert sb.list_objects_v2(Bucket="bee-one")["KeyCount"] == 0


def test_a_node_refuses_a_deployment_it_does_not_belong_to(schema):
    """Other root credentials than the deployment's, or no shared credentials at all, stop
    a node at start with a clear message."""
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        args = ["--meta", url_in(schema)]
        root_key = {"COFFER_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}
        a = Server(Path(a_dir), extra_args=args, env=root_key).start()
        try:
            other = Server(Path(b_dir), extra_args=args, env={
                **root_key, "COFFER_ROOT_ACCESS_KEY_ID": "AKIAOTHERKEY00000001"})
            with pytest.raises(RuntimeError) as e:
                other.start()
            assert "every node must use the same root credentials" in str(e.value)
            wrong_key = Server(Path(b_dir), extra_args=args, env={
                "COFFER_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()})
            with pytest.raises(RuntimeError) as e:
                wrong_key.start()
            assert "root key" in str(e.value)
        finally:
            a.stop()


def test_concurrent_writers_on_both_nodes_lose_no_acknowledged_write(nodes):
    """Writers on both nodes put the same few keys at once: a versioned bucket keeps every
    acknowledged version, exactly once, with one current version per key; an unversioned
    bucket ends with one of the acknowledged bodies per key and a listing that agrees."""
    from concurrent.futures import ThreadPoolExecutor
    a, b = nodes
    clients = [a.client(), b.client()]
    clients[0].create_bucket(Bucket="versioned")
    clients[0].put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    clients[1].create_bucket(Bucket="plain")
    keys = ["k0", "k1", "k2"]

    def writer(n: int):
        s3 = clients[n % 2]
        acked = []
        for i in range(15):
            key = keys[(n + i) % len(keys)]
            body = f"writer {n} write {i}".encode()
            v = s3.put_object(Bucket="versioned", Key=key, Body=body)["VersionId"]
            s3.put_object(Bucket="plain", Key=key, Body=body)
            acked.append((key, v, body))
        return acked

    with ThreadPoolExecutor(max_workers=6) as pool:
        acked = [x for r in pool.map(writer, range(6)) for x in r]

    listed = []
    for page in clients[1].get_paginator("list_object_versions").paginate(Bucket="versioned"):
        listed += page.get("Versions", [])
    assert sorted((v["Key"], v["VersionId"]) for v in listed) == sorted((k, v) for k, v, _ in acked)
    for key in keys:
        latest = [v for v in listed if v["Key"] == key and v["IsLatest"]]
        assert len(latest) == 1, key
    # Every acknowledged version reads back its own body, through either node.
    for n, (key, version, body) in enumerate(acked):
        got = clients[n % 2].get_object(Bucket="versioned", Key=key, VersionId=version)
        assert got["Body"].read() == body
    bodies = {body for _, _, body in acked}
    listing = clients[0].list_objects_v2(Bucket="plain")["Contents"]
    assert [o["Key"] for o in listing] == keys
    for o in listing:
        got = clients[1].get_object(Bucket="plain", Key=o["Key"])
        assert got["Body"].read() in bodies
        assert got["ETag"] == o["ETag"]


def events(server, name):
    """The trail's events of one name, through `server`'s LookupEvents."""
    ct = server.client("cloudtrail")
    out, token = [], None
    while True:
        args = dict(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])
        if token:
            args["NextToken"] = token
        r = ct.lookup_events(**args)
        out += r["Events"]
        token = r.get("NextToken")
        if not token:
            return out


def leader(servers, work):
    """The node whose log says it leads `work`, once one does."""
    def find():
        for s in servers:
            for line in s.stderr_lines:
                plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
                if "now leads" in plain and f"work={work}" in plain:
                    return s
        return None
    return until(find, 10.0, f"a node leads {work}")[0]


def deleted(kms, key) -> bool:
    try:
        kms.describe_key(KeyId=key)
        return False
    except ClientError as e:
        if e.response["Error"]["Code"] == "NotFoundException":
            return True
        raise


def test_scheduled_work_runs_once_and_moves_when_its_node_dies(schema):
    """A key's scheduled deletion runs on the node that leads KMS work, once (the trails of
    both nodes hold one DeleteKey, the leader's); kill -9 that node and the other takes
    the lead and runs the next deletion."""
    env = {"COFFER_KMS_DAY_SECONDS": "0.5", "COFFER_LOG": "warn,coffer=info"}
    with deployment(schema, env) as (a, b):
        lead = leader([a, b], "kms")
        other = b if lead is a else a
        kms = other.client("kms")
        first = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.schedule_key_deletion(KeyId=first, PendingWindowInDays=7)
        until(lambda: deleted(kms, first), 15.0, "the first key is deleted")
        def once():
            # Any node's LookupEvents reads both nodes' trails.
            found = [e for e in events(other, "DeleteKey")
                     if first in e["CloudTrailEvent"] and '"AwsServiceEvent"' in e["CloudTrailEvent"]]
            return found if len(found) >= 1 else None
        found, _ = until(once, 5.0, "the deletion is in a trail")
        time.sleep(1.5)
        found = once()
        assert len(found) == 1, found
        leader_chain = f"node-{(lead.data_dir / 'node-id').read_text().strip()}"
        audit_root = Path(lead.extra_args[lead.extra_args.index("--audit-dir") + 1])
        assert first in "".join(p.read_text() for p in (audit_root / leader_chain).glob("trail-*.jsonl")), \
            "the leader did it"

        lead.kill9()
        second = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.schedule_key_deletion(KeyId=second, PendingWindowInDays=7)
        assert leader([other], "kms") is other
        until(lambda: deleted(kms, second), 20.0, "the survivor deletes the second key")
        until(lambda: [e for e in events(other, "DeleteKey") if second in e["CloudTrailEvent"]],
              5.0, "the survivor's trail records it")


def test_every_nodes_trail_is_looked_up_and_verified_from_any_node(schema):
    from conftest import coffer_bin
    with deployment(schema) as (a, b):
        a.client().create_bucket(Bucket="made-on-a")
        key = a.client("kms").create_key()["KeyMetadata"]["KeyId"]
        b.client().create_bucket(Bucket="made-on-b")
        # Management calls are in their node's trail before they are answered.
        on_b = events(b, "CreateBucket")
        assert {json.loads(e["CloudTrailEvent"])["requestParameters"]["bucketName"] for e in on_b} >= {
            "made-on-a", "made-on-b"}
        assert any(key in e["CloudTrailEvent"] for e in events(b, "CreateKey"))
        assert any("made-on-b" in e["CloudTrailEvent"] for e in events(a, "CreateBucket"))
        audit_root = Path(a.extra_args[a.extra_args.index("--audit-dir") + 1])
        env = {**os.environ, "COFFER_ROOT_KEY": a.env["COFFER_ROOT_KEY"]}
        a.stop()
        b.stop()
        nodes = sorted(p.name for p in audit_root.iterdir())
        assert len(nodes) == 2 and all(n.startswith("node-") for n in nodes), nodes
        verify = [coffer_bin(), "audit", "verify", "--data-dir", str(a.data_dir), "--meta", url_in(schema),
                  "--audit-dir", str(audit_root)]
        ok = subprocess.run(verify, capture_output=True, text=True, env=env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "audit trail intact" in ok.stdout
        # Tampering with one node's chain is found, and named by node.
        trail = sorted((audit_root / nodes[1]).glob("trail-*.jsonl"))[0]
        lines = trail.read_text().splitlines()
        lines[0] = lines[0].replace("CreateBucket", "DeleteBucket").replace("CreateKey", "DeleteKey")
        if lines[0] == trail.read_text().splitlines()[0]:
            lines[0] = lines[0].replace("us-east-1", "us-west-2")
        trail.write_text("\n".join(lines) + "\n")
        bad = subprocess.run(verify, capture_output=True, text=True, env=env)
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert nodes[1] in bad.stdout


def blob_files(root: Path) -> dict:
    """The files of a blob directory, by area (staging; blobs, fanned out in
    subdirectories)."""
    return {area: sorted(p.name for p in (root / area).rglob("*") if p.is_file())
            for area in ("staging", "blobs")}


def test_a_node_killed_during_uploads_loses_nothing_acknowledged_and_leaves_no_orphans(schema):
    """kill -9 a node with an upload streaming in: everything it acknowledged reads back
    through the other node (its unfinished multipart upload completes there too), and
    once the abandoned write has sat idle, the node leading blob collection removes it:
    the blob directory then holds exactly the blobs records reference."""
    import http.client
    import urllib.parse
    with deployment(schema, {"COFFER_STAGED_IDLE_SECONDS": "2"}) as (a, b):
        blobs = Path(a.extra_args[a.extra_args.index("--blobs") + 1])
        sa, sb = a.client(), b.client()
        sa.create_bucket(Bucket="crash")
        acked = {}
        for i in range(5):
            body = os.urandom(200_000)
            sa.put_object(Bucket="crash", Key=f"done-{i}", Body=body)
            acked[f"done-{i}"] = body
        part = os.urandom(5 * 1024 * 1024)
        up = sa.create_multipart_upload(Bucket="crash", Key="parts")
        etag = sa.upload_part(Bucket="crash", Key="parts", UploadId=up["UploadId"], PartNumber=1,
                              Body=part)["ETag"]
        # A PUT whose body is still arriving when the node dies (presigned: unsigned body).
        url = urllib.parse.urlsplit(sa.generate_presigned_url(
            "put_object", Params={"Bucket": "crash", "Key": "in-flight"}, ExpiresIn=300))
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(64 * 1024 * 1024))
        conn.endheaders()
        for _ in range(8):
            conn.send(os.urandom(1024 * 1024))
        until(lambda: any(n.endswith(".tmp") for n in blob_files(blobs)["staging"]), 5.0,
              "the unfinished write is in staging")
        a.kill9()
        conn.close()

        for key, body in acked.items():
            assert sb.get_object(Bucket="crash", Key=key)["Body"].read() == body
        sb.complete_multipart_upload(Bucket="crash", Key="parts", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        assert sb.get_object(Bucket="crash", Key="parts")["Body"].read() == part
        with pytest.raises(ClientError):
            sb.head_object(Bucket="crash", Key="in-flight")

        def referenced():
            out = psql(f"SET search_path TO {schema}; SELECT blob_id FROM blob_refs ORDER BY blob_id")
            return sorted(line for line in out.splitlines() if line and line != "SET")
        def clean():
            files = blob_files(blobs)
            return not files["staging"] and files["blobs"] == referenced()
        until(clean, 15.0, "only referenced blobs remain")
        assert len(referenced()) >= 6


def test_two_nodes_over_an_s3_blob_tier_share_objects_and_keep_it_ciphertext(schema):
    """The blob tier in another S3 store (here a third coffer): what one node writes the
    other reads, and the store's bytes hold no plaintext of the encrypted objects."""
    import hashlib
    from conftest import ACCESS_KEY, SECRET_KEY
    mark = hashlib.sha512(b"coffer scale-out tier marker").digest()
    with tempfile.TemporaryDirectory(prefix="coffer-tier-") as tier_dir:
        tier = Server(Path(tier_dir)).start()
        try:
            tier.client().create_bucket(Bucket="tier")
            url = f"s3://tier/deployment?endpoint={tier.endpoint}"
            creds = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
            with deployment(schema, creds, blobs=url) as (a, b):
                sa, sb = a.client(), b.client()
                sa.create_bucket(Bucket="data")
                key = a.client("kms").create_key()["KeyMetadata"]["KeyId"]
                small = mark * 4096
                sa.put_object(Bucket="data", Key="sse-s3", Body=small)
                sb.put_object(Bucket="data", Key="sse-kms", Body=small,
                              ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
                part = mark * (6 * 1024 * 1024 // 64)
                up = sb.create_multipart_upload(Bucket="data", Key="big")
                e1 = sa.upload_part(Bucket="data", Key="big", UploadId=up["UploadId"],
                                    PartNumber=1, Body=part)["ETag"]
                sb.complete_multipart_upload(Bucket="data", Key="big", UploadId=up["UploadId"],
                                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
                assert sb.get_object(Bucket="data", Key="sse-s3")["Body"].read() == small
                assert sa.get_object(Bucket="data", Key="sse-kms")["Body"].read() == small
                assert sa.get_object(Bucket="data", Key="big")["Body"].read() == part
                stored = tier.client()
                keys = [o["Key"] for page in stored.get_paginator("list_objects_v2").paginate(Bucket="tier")
                        for o in page.get("Contents", [])]
                assert keys and all(k.startswith("deployment/") for k in keys)
                for k in keys:
                    assert mark not in stored.get_object(Bucket="tier", Key=k)["Body"].read(), k
        finally:
            tier.stop()
