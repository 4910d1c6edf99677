"""Upgrade safety: a data directory written by an earlier release (the committed fixture
tests/fixtures/legacy-data-dir: its SQLite file at schema version 4, blob files, audit
trail, root key and identity, made by commit 57e3d0d) opens with this build, reads back
every object, key, user and upload it holds, keeps writing, survives a restart, and its
trail verifies with the new records chained to the old. A data directory from a newer
release (a schema version above this build's) is refused at start with a clear error and
left untouched."""

import base64
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import TIER, Server, coffer_bin

pytestmark = pytest.mark.skipif(TIER == "s3", reason="an embedded data directory from an earlier release")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LEGACY = json.loads((FIXTURES / "legacy.json").read_text())


# The fixture as its release wrote it. Opening it in place (even to read, with sqlite3)
# checkpoints its write-ahead log into meta.sqlite and changes it; tests work on copies.
FIXTURE_SHA256 = {
    "LOCK": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "audit/trail-00000001.digest.json": "4454c7055f0a511725809bf7d5d9c16983d00375b063359a928e2182c410f256",
    "audit/trail-00000001.jsonl": "986f41d9b6a18e761cf9e885bfb0e708628812b6ab09814008c8c9c6d4f90769",
    "audit/trail-00000002.jsonl": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "blobs/45/01a24380-4017-7114-9ba3-52cb81ec1045": "a09a4acbb3b1e14b9b2ff47a07f40fd53766eb88b4d40d63f4c4c1e86b2af70c",
    "identity.json": "e01767fc9dd6aed415a9c9a51d30dd6079dca091449d25d03b071f0e021fe457",
    "meta.sqlite": "064212a0f605ef700386aab643b83ed5fcaa60618f857a6cfa3278272d2d14c4",
    "meta.sqlite-shm": "323352ff32db5174275b1da71b9dbb2d21ded639698fedf1bf3a78fdc928bc76",
    "meta.sqlite-wal": "adc680722d64f8ded825d95ef2e1b0fedfce0620fb38197db11da42c190c4dad",
    "root.key": "8e55b852e8cf2c80629c5171231dc5303e82b79665dcfb6945e2ecf5dbd6ea78",
}


def test_the_fixture_is_as_its_release_wrote_it():
    root = FIXTURES / "legacy-data-dir"
    found = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file()}
    assert found == FIXTURE_SHA256


def copy_fixture(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(FIXTURES / "legacy-data-dir", d)
    return d


def read_all(s):
    s3 = s.client()
    for name, b64 in LEGACY["objects"].items():
        bucket, key = name.split("/", 1)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == base64.b64decode(b64), name


def test_an_earlier_release_s_data_directory_reads_back_and_keeps_writing(tmp_path):
    d = copy_fixture(tmp_path)
    s = Server(d).start()
    try:
        read_all(s)
        s3, kms = s.client(), s.client("kms")
        # The KMS key made then still encrypts and decrypts.
        blob = kms.encrypt(KeyId="alias/legacy", Plaintext=b"after the upgrade")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after the upgrade"
        # The IAM user's access key made then still signs.
        user = s.client("sts", access_key=LEGACY["user_access_key_id"],
                        secret_key=LEGACY["user_secret_access_key"])
        assert user.get_caller_identity()["Arn"].endswith(":user/legacy-user")
        # The upload left open then completes now, its old part as the object.
        parts = s3.list_parts(Bucket="legacy", Key="pending.bin", UploadId=LEGACY["upload_id"])["Parts"]
        assert [p["PartNumber"] for p in parts] == [1]
        s3.complete_multipart_upload(
            Bucket="legacy", Key="pending.bin", UploadId=LEGACY["upload_id"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": parts[0]["ETag"]}]})
        completed = base64.b64decode(LEGACY["part"])
        assert s3.get_object(Bucket="legacy", Key="pending.bin")["Body"].read() == completed
        # New writes of every kind.
        s3.put_object(Bucket="legacy", Key="new.txt", Body=b"new")
        s3.put_object(Bucket="legacy-kms", Key="new-secret.txt", Body=b"new secret")
        s3.create_bucket(Bucket="after-upgrade")
        s.client("iam").create_user(UserName="after-upgrade")
    finally:
        s.stop()
    s = Server(d).start()
    try:
        read_all(s)
        s3 = s.client()
        assert s3.get_object(Bucket="legacy", Key="pending.bin")["Body"].read() == completed
        assert s3.get_object(Bucket="legacy-kms", Key="new-secret.txt")["Body"].read() == b"new secret"
        assert s3.head_object(Bucket="legacy-kms", Key="new-secret.txt")["ServerSideEncryption"] == "aws:kms"
        s.client("iam").get_user(UserName="after-upgrade")
    finally:
        s.stop()
    p = subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(d)], capture_output=True, text=True)
    assert p.returncode == 0 and "audit trail intact" in p.stdout, p.stdout + p.stderr
    version = sqlite3.connect(d / "meta.sqlite").execute("PRAGMA user_version").fetchone()[0]
    assert version > 4, "the schema was migrated"


def test_a_newer_release_s_data_directory_is_refused_and_left_untouched(tmp_path):
    d = copy_fixture(tmp_path)
    # Opened by this build once (migrated to its own version), then stamped by "a newer".
    Server(d).start().stop()
    db = sqlite3.connect(d / "meta.sqlite")
    current = db.execute("PRAGMA user_version").fetchone()[0]
    db.execute(f"PRAGMA user_version = {current + 1}")
    db.commit()
    db.close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir() if p.is_file()}
    proc = subprocess.run([coffer_bin(), "serve", "--data-dir", str(d), "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60,
                          env={**Server(d).env})
    assert proc.returncode != 0
    assert (f"schema version {current + 1} is newer than this release understands ({current})"
            in proc.stderr), proc.stderr
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir() if p.is_file()}
    assert after == before
