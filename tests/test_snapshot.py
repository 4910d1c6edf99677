"""`coffer snapshot save|load` (issue 20): a populated data directory — buckets under every
SSE mode, versions, a multipart object, KMS keys with rotated material, HMAC and signing
keys, IAM users with keys and policies — saved into one file and loaded into a fresh
directory reads back whole, and its trail verifies. Refusals (a running server, another
root key, no key, a damaged or cut-short file, a directory in use) change nothing."""

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import Server, coffer_bin

MARKER = b"snapshot-plaintext-marker-"
SSE_C_KEY = bytes(range(32))
# The tests speak plain HTTP; SSE-C needs TLS unless the server is told otherwise.
SSE_C_OVER_HTTP = ["--allow-insecure-sse-c"]


def sse_c():
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(SSE_C_KEY).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(SSE_C_KEY).digest()).decode(),
    }


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("COFFER_ROOT_KEY", None)
    e.update(env or {})
    return subprocess.run([coffer_bin(), *args], capture_output=True, text=True, env=e, timeout=300)


def populate(s):
    """Fills a server; returns what must read back."""
    s3, kms, iam = s.client(), s.client("kms"), s.client("iam")
    want = {"objects": {}}
    key = kms.create_key(Description="rotated")["KeyMetadata"]["KeyId"]
    before = kms.encrypt(KeyId=key, Plaintext=b"before rotation")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key)
    after = kms.encrypt(KeyId=key, Plaintext=b"after rotation")["CiphertextBlob"]
    kms.create_alias(AliasName="alias/snap", TargetKeyId=key)
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    sign_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signature = kms.sign(KeyId=sign_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    want["kms"] = dict(key=key, before=before, after=after, mac_key=mac_key, mac=mac,
                       sign_key=sign_key, signature=signature)

    s3.create_bucket(Bucket="snap-s3")  # SSE-S3, the default
    s3.create_bucket(Bucket="snap-kms")
    s3.put_bucket_encryption(Bucket="snap-kms", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    s3.create_bucket(Bucket="snap-versions")
    s3.put_bucket_versioning(Bucket="snap-versions", VersioningConfiguration={"Status": "Enabled"})
    puts = [
        ("snap-s3", "small", MARKER + b"s3", {}),
        ("snap-s3", "inline", MARKER + b"i", {}),
        ("snap-kms", "bucket-key", MARKER + b"kms" * 50_000, {}),
        ("snap-kms", "per-request", MARKER + b"kms2",
         {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key, "BucketKeyEnabled": False}),
        ("snap-s3", "customer", MARKER + b"ssec" * 1000, sse_c()),
    ]
    for bucket, k, body, extra in puts:
        s3.put_object(Bucket=bucket, Key=k, Body=body, **extra)
        want["objects"][(bucket, k, None)] = (body, extra)
    v1 = s3.put_object(Bucket="snap-versions", Key="doc", Body=MARKER + b"v1")["VersionId"]
    v2 = s3.put_object(Bucket="snap-versions", Key="doc", Body=MARKER + b"v2")["VersionId"]
    want["objects"][("snap-versions", "doc", v1)] = (MARKER + b"v1", {})
    want["objects"][("snap-versions", "doc", v2)] = (MARKER + b"v2", {})
    big = os.urandom(6 * 1024 * 1024) + MARKER
    up = s3.create_multipart_upload(Bucket="snap-kms", Key="multi")["UploadId"]
    parts = []
    for n, chunk in enumerate([big[: 5 * 1024 * 1024], big[5 * 1024 * 1024:]], start=1):
        etag = s3.upload_part(Bucket="snap-kms", Key="multi", UploadId=up, PartNumber=n, Body=chunk)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket="snap-kms", Key="multi", UploadId=up, MultipartUpload={"Parts": parts})
    want["objects"][("snap-kms", "multi", None)] = (big, {})

    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"], "Resource": "*"}]}))
    ak = iam.create_access_key(UserName="reader")["AccessKey"]
    want["user"] = (ak["AccessKeyId"], ak["SecretAccessKey"])
    return want


def check(s, want):
    s3, kms = s.client(), s.client("kms")
    for (bucket, k, version), (body, extra) in want["objects"].items():
        # Reads name the customer's key only (SSE-KMS is read as any object is).
        args = dict(Bucket=bucket, Key=k, **{n: v for n, v in extra.items() if n.startswith("SSECustomer")})
        if version:
            args["VersionId"] = version
        got = s3.get_object(**args)
        assert got["Body"].read() == body, (bucket, k, version)
    assert s3.head_object(Bucket="snap-kms", Key="bucket-key")["BucketKeyEnabled"] is True
    assert s3.head_object(Bucket="snap-s3", Key="small")["ServerSideEncryption"] == "AES256"
    w = want["kms"]
    assert kms.decrypt(CiphertextBlob=w["before"])["Plaintext"] == b"before rotation"
    assert kms.decrypt(CiphertextBlob=w["after"])["Plaintext"] == b"after rotation"
    assert len(kms.list_key_rotations(KeyId=w["key"])["Rotations"]) == 1
    assert kms.describe_key(KeyId="alias/snap")["KeyMetadata"]["KeyId"] == w["key"]
    assert kms.verify_mac(KeyId=w["mac_key"], Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=w["mac"])["MacValid"]
    assert kms.verify(KeyId=w["sign_key"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256",
                      Signature=w["signature"])["SignatureValid"]
    # The user signs in with the key made before the save, and is held to its policy.
    reader = s.client(access_key=want["user"][0], secret_key=want["user"][1])
    assert reader.get_object(Bucket="snap-s3", Key="small")["Body"].read() == MARKER + b"s3"
    with pytest.raises(Exception) as e:
        reader.put_object(Bucket="snap-s3", Key="nope", Body=b"x")
    assert "AccessDenied" in str(e.value)


def test_a_snapshot_round_trip_reads_back_whole_and_its_trail_verifies(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    snap = tmp_path / "state.snapshot"
    s = Server(src, extra_args=SSE_C_OVER_HTTP, scale_out=False).start()
    try:
        want = populate(s)
        # A running server's directory is refused: the files would change under the save.
        p = run("snapshot", "save", "--data-dir", str(src), str(snap))
        assert p.returncode != 0 and "stop its server first" in p.stderr, p.stderr
        assert not snap.exists()
    finally:
        s.stop()
    p = run("snapshot", "save", "--data-dir", str(src), str(snap))
    assert p.returncode == 0, p.stderr
    saved = json.loads(p.stdout)
    assert saved["Files"] > 3 and saved["RootKeyFingerprint"]
    data = snap.read_bytes()
    # As secret as the data directory: readable by its owner alone.
    assert snap.stat().st_mode & 0o777 == 0o600
    # No plaintext of an encrypted object, and no root key, in the file.
    assert MARKER not in data
    assert (src / "root.key").read_bytes() not in data

    p = run("snapshot", "load", "--data-dir", str(dst), "--root-key-file", str(src / "root.key"), str(snap))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Files"] == saved["Files"]
    assert not (dst / "root.key").exists(), "the root key is the caller's to bring"
    assert (dst / "identity.json").stat().st_mode & 0o777 == 0o600
    p = run("audit", "verify", "--data-dir", str(dst), "--root-key-file", str(src / "root.key"))
    assert p.returncode == 0 and "intact" in p.stdout, p.stdout + p.stderr

    s = Server(dst, extra_args=["--root-key-file", str(src / "root.key"), *SSE_C_OVER_HTTP], scale_out=False).start()
    try:
        check(s, want)
        # The loaded state goes on: new writes and keys work.
        s.client().put_object(Bucket="snap-kms", Key="new", Body=b"after load")
        assert s.client().get_object(Bucket="snap-kms", Key="new")["Body"].read() == b"after load"
    finally:
        s.stop()
    p = run("audit", "verify", "--data-dir", str(dst), "--root-key-file", str(src / "root.key"))
    assert p.returncode == 0, p.stdout + p.stderr
    # The source is untouched by all this.
    s = Server(src, extra_args=SSE_C_OVER_HTTP, scale_out=False).start()
    try:
        check(s, want)
    finally:
        s.stop()


def test_loads_that_cannot_be_trusted_are_refused_and_write_nothing(tmp_path):
    src = tmp_path / "src"
    snap = tmp_path / "state.snapshot"
    s = Server(src, extra_args=SSE_C_OVER_HTTP, scale_out=False).start()
    try:
        s.client().create_bucket(Bucket="one")
        s.client().put_object(Bucket="one", Key="k", Body=b"v" * 100_000)
    finally:
        s.stop()
    assert run("snapshot", "save", "--data-dir", str(src), str(snap)).returncode == 0
    key = ["--root-key-file", str(src / "root.key")]
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    os.chmod(other, 0o600)
    fingerprint = json.loads(run("snapshot", "save", "--data-dir", str(src), str(tmp_path / "again")).stdout)[
        "RootKeyFingerprint"]

    truncated = tmp_path / "truncated"
    truncated.write_bytes(snap.read_bytes()[: len(snap.read_bytes()) // 2])
    flipped = tmp_path / "flipped"
    raw = bytearray(snap.read_bytes())
    at = raw.find(b"data/meta.sqlite\x00")  # the entry's tar header; its bytes follow it
    assert at >= 0
    raw[at + 512 + 200] ^= 1
    flipped.write_bytes(bytes(raw))
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a snapshot at all" * 100)

    cases = [
        ("no key", [], snap, "give that key"),
        ("another key", ["--root-key-file", str(other)], snap, fingerprint),
        ("cut short", key, truncated, "damaged"),
        ("a flipped byte", key, flipped, "does not match its manifest"),
        ("not a snapshot", key, junk, "not a Coffer snapshot"),
    ]
    for name, args, file, why in cases:
        dst = tmp_path / f"dst-{name.replace(' ', '-')}"
        p = run("snapshot", "load", "--data-dir", str(dst), *args, str(file))
        assert p.returncode != 0 and why in p.stderr, (name, p.stderr)
        assert not dst.exists(), f"{name}: {dst} was written"
        assert not [x for x in tmp_path.iterdir() if x.name.startswith(".coffer-snapshot-")], name
    # A snapshot is never written into the directory it is of.
    p = run("snapshot", "save", "--data-dir", str(src), str(src / "inside.snapshot"))
    assert p.returncode != 0 and "outside the data directory" in p.stderr, p.stderr
    assert not list(src.glob("inside.snapshot*"))
    # A directory that holds anything is never overwritten.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep me")
    p = run("snapshot", "load", "--data-dir", str(busy), *key, str(snap))
    assert p.returncode != 0 and "not empty" in p.stderr
    assert [x.name for x in busy.iterdir()] == ["mine.txt"]
    # What an interrupted load left behind (no clean-up ran) does not block the next.
    again = tmp_path / "interrupted"
    (again / ".coffer-snapshot-x1y2z3").mkdir(parents=True)
    (again / ".coffer-snapshot-x1y2z3" / "identity.json").write_text("partial")
    p = run("snapshot", "load", "--data-dir", str(again), *key, str(snap))
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in again.iterdir() if x.name.startswith(".")) == []
    assert (again / "meta.sqlite").exists()
    # The environment's key is a key given too.
    env_key = base64.b64encode((src / "root.key").read_bytes()).decode()
    dst = tmp_path / "dst-env"
    p = run("snapshot", "load", "--data-dir", str(dst), str(snap), env={"COFFER_ROOT_KEY": env_key})
    assert p.returncode == 0, p.stderr
    assert Path(dst / "meta.sqlite").exists()


def test_a_root_key_kept_in_the_directory_under_any_name_stays_out(tmp_path):
    """However the key file is named on the command line (`./src/keys/k`), it and its
    rotation siblings are never in the snapshot; links are refused, not followed."""
    src = tmp_path / "src"
    (src / "keys").mkdir(parents=True)
    s = Server(src, extra_args=["--root-key-file", str(src / "keys" / "k")], scale_out=False).start()
    try:
        s.client().create_bucket(Bucket="keyed")
        s.client().put_object(Bucket="keyed", Key="k", Body=b"v")
    finally:
        s.stop()
    key = (src / "keys" / "k").read_bytes()
    (src / "keys" / "k.retired-00").write_bytes(os.urandom(32))
    snap = tmp_path / "s"
    p = subprocess.run([coffer_bin(), "snapshot", "save", "--data-dir", "./src", "--root-key-file", "./src/keys/k",
                        str(snap)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    names = subprocess.run(["tar", "tf", str(snap)], capture_output=True, text=True, check=True).stdout.split()
    assert not [n for n in names if n.startswith("data/keys/")], names
    assert key not in snap.read_bytes()
    (src / "blobs-elsewhere").symlink_to(tmp_path)
    p = run("snapshot", "save", "--data-dir", str(src), "--root-key-file", str(src / "keys" / "k"),
            str(tmp_path / "t"))
    assert p.returncode != 0 and "not a plain file" in p.stderr, p.stderr
    assert not (tmp_path / "t").exists() and not (tmp_path / "t.partial").exists()
