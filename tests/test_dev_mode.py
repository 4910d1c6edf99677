"""`coffer serve --dev` (issue 20): any credentials are the root of an account, signatures
are still parsed, keys made inside are enforced, state is temporary, loopback only; and
the test clock (`--test-clock`, `coffer clock`): what follows it, who may move it, and
its audit events."""

import datetime
import http.client
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

import s3raw
from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server, coffer_bin


def client(server, service, key, secret, **config):
    return boto3.client(
        service, endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}, **config),
    )


def code(e):
    return e.value.response["Error"]["Code"]


def clock(server, *args, env=None, check=True):
    """Runs `coffer clock ARGS` against `server`; returns (exit code, JSON or stderr)."""
    e = dict(os.environ, AWS_ENDPOINT_URL=server.endpoint,
             AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="anything")
    for k in ("COFFER_ROOT_ACCESS_KEY_ID", "COFFER_ROOT_SECRET_ACCESS_KEY", "COFFER_ENDPOINT"):
        e.pop(k, None)
    e.update(env or {})
    p = subprocess.run([coffer_bin(), "clock", *args], env=e, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p.returncode, p.stderr


@pytest.fixture(scope="module")
def dev():
    s = Server(None, extra_args=["--dev"]).start()
    yield s
    s.stop()


def test_any_key_and_secret_is_the_root_of_an_account(dev):
    a = client(dev, "sts", "test", "test").get_caller_identity()
    b = client(dev, "sts", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").get_caller_identity()
    assert a["Account"] == b["Account"] and a["Arn"].endswith(":root"), (a, b)
    # A 12-digit key id is that account (LocalStack's rule).
    c = client(dev, "sts", "111122223333", "whatever").get_caller_identity()
    assert c["Account"] == "111122223333" and c["Arn"] == "arn:aws:iam::111122223333:root"

    s3 = client(dev, "s3", "test", "x")
    s3.create_bucket(Bucket="dev-default")
    s3.put_object(Bucket="dev-default", Key="k", Body=b"v")
    assert client(dev, "s3", "other-key", "other-secret").get_object(
        Bucket="dev-default", Key="k")["Body"].read() == b"v"
    # Another account is another tenant: its root sees none of the default account's.
    other = client(dev, "s3", "111122223333", "y")
    assert "dev-default" not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as e:
        other.get_object(Bucket="dev-default", Key="k")
    assert code(e) == "AccessDenied"
    # KMS and the other JSON APIs take any key too.
    kms = client(dev, "kms", "test", "x")
    key = kms.create_key()["KeyMetadata"]
    assert key["Arn"].split(":")[4] == a["Account"]
    assert client(dev, "kms", "111122223333", "z").list_keys()["Keys"] == []


def test_signatures_are_still_parsed_and_checked_but_for_their_value(dev):
    # Keys this server does not know: the requests below are served as a root only once
    # everything but the signature's value checks out.
    unknown = dict(access_key="made-up-key", secret_key="made-up-secret")
    status, _, _ = s3raw.request(dev.endpoint, "GET", "/", **unknown)
    assert status == 200
    # A skewed date fails as on AWS.
    old = s3raw.utcnow() - datetime.timedelta(hours=1)
    status, _, body = s3raw.request(dev.endpoint, "GET", "/", when=old, **unknown)
    assert (status, s3raw.error_code(body)) == (403, "RequestTimeTooSkewed")
    u = urllib.parse.urlsplit(dev.endpoint)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())

    def answer(auth):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", "/", headers={"Authorization": auth, "x-amz-date": amz_date,
                                           "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        r = conn.getresponse()
        got = (r.status, s3raw.error_code(r.read()))
        conn.close()
        return got

    # Malformed headers get the same answer whether the key is known (the operator's) or not.
    for malformed in [
        "AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/s3, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=XYZ",
        "AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/s3/aws4_request, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential={key}/2001/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
    ]:
        made_up = answer(malformed.format(key="made-up-key", day=amz_date[:8]))
        known = answer(malformed.format(key=ACCESS_KEY, day=amz_date[:8]))
        assert made_up == known and made_up[0] in (400, 403), (malformed, made_up, known)
    # The KMS checks the date too.
    kms = client(dev, "kms", "test", "x")
    with pytest.raises(ClientError) as e:
        with __import__("unittest").mock.patch("botocore.auth.get_current_datetime",
                                                  return_value=s3raw.utcnow() - datetime.timedelta(hours=1)):
            kms.list_keys()
    assert code(e) == "InvalidSignatureException"
    # A body that does not match its signed hash is still refused.
    status, _, body = s3raw.request(dev.endpoint, "PUT", "/dev-default/tampered", body=b"abc",
                                    payload_hash="0" * 64, **unknown)
    assert status == 400 and s3raw.error_code(body) == "XAmzContentSHA256Mismatch", body


def test_keys_made_inside_are_checked_and_their_policies_enforced(dev):
    iam = client(dev, "iam", "test", "x")
    iam.create_user(UserName="alice")
    k = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = client(dev, "s3", k["AccessKeyId"], k["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        alice.list_buckets()
    assert code(e) == "AccessDenied"
    # Her key with the wrong secret is no longer "any credentials".
    with pytest.raises(ClientError) as e:
        client(dev, "s3", k["AccessKeyId"], "wrong").list_buckets()
    assert code(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        client(dev, "sts", k["AccessKeyId"], "wrong").get_caller_identity()
    assert code(e) == "SignatureDoesNotMatch"
    iam.put_user_policy(UserName="alice", PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}))
    assert "Buckets" in alice.list_buckets()
    # An inactive key stays refused: it is not served as a root.
    iam.update_access_key(UserName="alice", AccessKeyId=k["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as e:
        alice.list_buckets()
    assert code(e) == "InvalidAccessKeyId"
    with pytest.raises(ClientError) as e:
        client(dev, "kms", k["AccessKeyId"], k["SecretAccessKey"]).list_keys()
    assert code(e) == "UnrecognizedClientException"
    # A deleted key is not "any credentials" either, whatever secret signs with it.
    iam.delete_access_key(UserName="alice", AccessKeyId=k["AccessKeyId"])
    for secret in (k["SecretAccessKey"], "anything"):
        with pytest.raises(ClientError) as e:
            client(dev, "s3", k["AccessKeyId"], secret).list_buckets()
        assert code(e) == "InvalidAccessKeyId"
        with pytest.raises(ClientError) as e:
            client(dev, "sts", k["AccessKeyId"], secret).get_caller_identity()
        assert code(e) == "InvalidClientTokenId"
    # Nor are a role's sessions once the role is gone.
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "*"}}]}))
    creds = client(dev, "sts", "test", "x").assume_role(
        RoleArn=iam.get_role(RoleName="worker")["Role"]["Arn"], RoleSessionName="shift")["Credentials"]
    iam.delete_role(RoleName="worker")
    with pytest.raises(ClientError) as e:
        client(dev, "sts", creds["AccessKeyId"], "anything").get_caller_identity()
    assert code(e) == "InvalidClientTokenId"


def test_users_of_a_numbered_account_sign_in(dev):
    iam = client(dev, "iam", "444455556666", "x")
    iam.create_user(UserName="bob")
    k = iam.create_access_key(UserName="bob")["AccessKey"]
    who = client(dev, "sts", k["AccessKeyId"], k["SecretAccessKey"]).get_caller_identity()
    assert who["Arn"] == "arn:aws:iam::444455556666:user/bob", who


def test_presigned_urls_of_any_key_in_both_signature_versions(dev):
    s3 = client(dev, "s3", "test", "x", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="dev-presign")
    s3.put_object(Bucket="dev-presign", Key="a b+c", Body=b"hello")
    for version in ("s3", "s3v4"):
        c = client(dev, "s3", "test", "x", s3={"addressing_style": "path"}, signature_version=version)
        url = c.generate_presigned_url("get_object", Params={
            "Bucket": "dev-presign", "Key": "a b+c", "ResponseContentType": "text/x y"})
        with urllib.request.urlopen(url, timeout=30) as r:
            assert (r.read(), r.headers["content-type"]) == (b"hello", "text/x y"), version
        url = c.generate_presigned_url("put_object", Params={"Bucket": "dev-presign", "Key": f"up-{version}"})
        req = urllib.request.Request(url, data=b"put " + version.encode(), method="PUT")
        assert urllib.request.urlopen(req, timeout=30).status == 200
        assert s3.get_object(Bucket="dev-presign", Key=f"up-{version}")["Body"].read() == b"put " + version.encode()
    # Version 2 header signatures too (boto3's "s3" signer).
    v2 = client(dev, "s3", "test", "x", s3={"addressing_style": "path"}, signature_version="s3")
    assert v2.get_object(Bucket="dev-presign", Key="a b+c")["Body"].read() == b"hello"


def test_a_banner_loopback_only_and_state_removed_at_exit():
    s = Server(None, extra_args=["--dev"]).start()
    try:
        banner = "\n".join(s.stdout_lines)
        assert "development server" in banner and "not for production" in banner, banner
        m = re.search(r"State is temporary \((.+)\), removed at exit", banner)
        assert m, banner
        state = Path(m.group(1))
        assert (state / "meta.sqlite").exists()
        s.client(access_key="k", secret_key="s").create_bucket(Bucket="gone-at-exit")
    finally:
        assert s.stop() == 0
    assert not state.exists(), f"{state} was left behind"

    for args, why in [
        (["--dev", "--listen", "0.0.0.0:0"], "loopback"),
        (["--dev", "--data-dir", "/tmp/x"], "cannot be used with"),
        (["--dev-allow-remote"], "--dev"),
    ]:
        p = subprocess.run([coffer_bin(), "serve", *args], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and why in p.stderr, (args, p.stderr)
    s = Server(None, extra_args=["--dev", "--dev-allow-remote", "--listen", "0.0.0.0:0"]).start()
    try:
        assert s.endpoint.startswith("http://0.0.0.0:"), s.endpoint
    finally:
        s.stop()


def test_health_answers_soon_after_start_and_idle_memory():
    """Prints the time from spawning `coffer serve --dev` to its first 200 from
    /_coffer/health, and its resident memory idle (figures for the record; run it on a
    release build for the release figures)."""
    started = time.monotonic()
    proc = subprocess.Popen([coffer_bin(), "serve", "--dev", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        endpoint = next(line.split()[-1] for line in proc.stdout if line.startswith("listening on "))
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/_coffer/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() - started < 60, "no health in 60 s"
            time.sleep(0.002)
        first = time.monotonic() - started
        time.sleep(1)
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        print(f"first 200 from /_coffer/health {first * 1000:.0f} ms after spawn; idle RSS {rss / 1024:.1f} MiB "
              f"({os.path.basename(coffer_bin())} at {coffer_bin()})")
    finally:
        proc.terminate()
        proc.wait(30)


# The test clock.

def test_the_clock_moves_only_on_a_test_clock_server_and_only_for_the_operator(data_dir):
    s = Server(data_dir).start()
    try:
        rc, err = clock(s, "show", check=False,
                        env={"COFFER_ROOT_ACCESS_KEY_ID": ACCESS_KEY, "COFFER_ROOT_SECRET_ACCESS_KEY": SECRET_KEY})
        assert rc != 0 and "InvalidAction" in err and "--test-clock" in err, err
        # Any credentials are not the operator's outside --dev.
        rc, err = clock(s, "show", check=False)
        assert rc != 0 and "InvalidClientTokenId" in err, err
    finally:
        s.stop()
    s = Server(data_dir, extra_args=["--test-clock"]).start()
    try:
        op = {"COFFER_ROOT_ACCESS_KEY_ID": ACCESS_KEY, "COFFER_ROOT_SECRET_ACCESS_KEY": SECRET_KEY}
        before = clock(s, "show", env=op)
        assert before["OffsetSeconds"] == 0
        iam = s.client("iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="admin")["AccessKey"]
        rc, err = clock(s, "advance", "1d", check=False, env={
            "COFFER_ROOT_ACCESS_KEY_ID": k["AccessKeyId"], "COFFER_ROOT_SECRET_ACCESS_KEY": k["SecretAccessKey"]})
        assert rc != 0 and "AccessDenied" in err and "only the instance operator" in err, err
        for bad in ("0d", "-1d", "1y", "1.5d", "d", "999999999d"):
            rc, err = clock(s, "advance", bad, check=False, env=op)
            assert rc != 0 and "ValidationError" in err, (bad, err)
        assert clock(s, "show", env=op)["OffsetSeconds"] == 0, "a refused advance moved the clock"
        after = clock(s, "advance", "36h", env=op)
        assert after["OffsetSeconds"] == 36 * 3600
        now = datetime.datetime.fromisoformat(after["Now"].replace("Z", "+00:00"))
        system = datetime.datetime.fromisoformat(after["SystemTime"].replace("Z", "+00:00"))
        assert abs((now - system) - datetime.timedelta(hours=36)) < datetime.timedelta(seconds=5)
        # Signatures keep the real clock: ordinary calls still work after the advance.
        s.client().list_buckets()
        # Each advance is an audit event, with what it asked.
        events = s.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AdvanceClock"}])["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        ok = [r for r in records if not r.get("errorCode")]
        assert len(ok) == 1 and "36h" in json.dumps(ok[0]["requestParameters"]), records
        refused = [r for r in records if r.get("errorCode")]
        assert {r["errorCode"] for r in refused} == {"AccessDenied", "ValidationError"}, refused
    finally:
        s.stop()


def test_retention_and_restores_follow_the_clock(dev):
    s3 = client(dev, "s3", "test", "x")
    s3.create_bucket(Bucket="dev-locked", ObjectLockEnabledForBucket=True)
    now = datetime.datetime.fromisoformat(clock(dev, "show")["Now"].replace("Z", "+00:00"))
    v = s3.put_object(Bucket="dev-locked", Key="record", Body=b"keep",
                      ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=now + datetime.timedelta(days=1))["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket="dev-locked", Key="record", VersionId=v)
    assert code(e) == "AccessDenied"
    clock(dev, "advance", "2d")
    s3.delete_object(Bucket="dev-locked", Key="record", VersionId=v)
    assert s3.list_object_versions(Bucket="dev-locked").get("Versions", []) == []

    s3.create_bucket(Bucket="dev-cold")
    s3.put_object(Bucket="dev-cold", Key="tape", Body=b"archived", StorageClass="GLACIER")
    s3.restore_object(Bucket="dev-cold", Key="tape",
                      RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}})
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="dev-cold", Key="tape")
    assert code(e) == "InvalidObjectState"
    assert 'ongoing-request="true"' in s3.head_object(Bucket="dev-cold", Key="tape")["Restore"]
    clock(dev, "advance", "12h")
    assert s3.get_object(Bucket="dev-cold", Key="tape")["Body"].read() == b"archived"
    clock(dev, "advance", "2d")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="dev-cold", Key="tape")
    assert code(e) == "InvalidObjectState"


def test_imported_material_expires_on_the_clock(dev):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    kms = client(dev, "kms", "test", "x")
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    public = serialization.load_der_public_key(params["PublicKey"])
    wrapped = public.encrypt(os.urandom(32), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                          algorithm=hashes.SHA256(), label=None))
    valid_to = datetime.datetime.fromisoformat(clock(dev, "show")["Now"].replace("Z", "+00:00")) \
        + datetime.timedelta(days=3)
    kms.import_key_material(KeyId=key, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    clock(dev, "advance", "4d")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    # An import token expires after a day of the clock too.
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    clock(dev, "advance", "25h")
    wrapped = serialization.load_der_public_key(params["PublicKey"]).encrypt(
        os.urandom(32), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=key, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert code(e) == "ExpiredImportTokenException"
