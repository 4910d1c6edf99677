"""`coffer migrate`: an embedded deployment (one data directory) moved to a scale-out one
(PostgreSQL, a shared blob directory, a shared archive and audit directory), then read
back, all of it, through a node on PostgreSQL: objects under every SSE mode, versions and
delete markers, an upload in progress, archived objects, bucket and account settings,
KMS keys with their old material versions, aliases and grants, IAM users with their
access keys and policies, and the audit trail."""

import base64
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, Server, coffer_bin, psql, url_in
from test_anonymous import control
from test_archive import wait_for

MARK = b"migrated-plaintext-marker-"
DAY = {"COFFER_S3_DAY_SECONDS": "1"}


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"]


def migrate(*args, env=None):
    return subprocess.run([coffer_bin(), "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COFFER_ROOT_ACCESS_KEY_ID": ACCESS_KEY, **(env or {})},
                          timeout=300)


def populate(s) -> dict:
    """Everything an embedded deployment holds, written through its API; returns what to
    expect after the move."""
    s3, kms, iam = s.client(), s.client("kms"), s.client("iam")
    account = s.client("sts").get_caller_identity()["Account"]
    x = {"account": account}

    # KMS: a key whose material rotates (a ciphertext under the first version), an alias,
    # a grant, an HMAC key, and a key pending deletion.
    key = kms.create_key(Description="app key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key)
    x["old_ciphertext"] = kms.encrypt(KeyId=key, Plaintext=b"before rotation")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key)
    wait_for("the rotation", lambda: len(kms.list_key_rotations(KeyId=key)["Rotations"]) == 1)
    x["new_ciphertext"] = kms.encrypt(KeyId=key, Plaintext=b"after rotation")["CiphertextBlob"]
    grantee = f"arn:aws:iam::{account}:user/grantee"
    x["grant"] = kms.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Decrypt"])["GrantId"]
    hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    x["mac"] = kms.generate_mac(KeyId=hmac, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=30)
    x.update(key=key, hmac=hmac, doomed=doomed)

    # IAM: a user who may read one prefix, with an access key.
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mig-plain/*"}]}))
    x["reader"] = iam.create_access_key(UserName="reader")["AccessKey"]

    # Objects: inline and blob-sized, under SSE-S3 (the default), SSE-KMS with a bucket
    # key, SSE-C; tags; a completed multipart object; an upload in progress.
    s3.create_bucket(Bucket="mig-plain")
    x["small"] = MARK + b"small"
    x["large"] = MARK + os.urandom(300 * 1024)
    s3.put_object(Bucket="mig-plain", Key="small.txt", Body=x["small"])
    s3.put_object(Bucket="mig-plain", Key="dir/large.bin", Body=x["large"], Tagging="team=blue")
    s3.put_bucket_policy(Bucket="mig-plain", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
             "Resource": "arn:aws:s3:::mig-plain"}]}))
    s3.create_bucket(Bucket="mig-kms")
    s3.put_bucket_encryption(Bucket="mig-kms", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    x["kms_body"] = MARK + os.urandom(200 * 1024)
    s3.put_object(Bucket="mig-kms", Key="secret.bin", Body=x["kms_body"])
    x["ssec_key"] = os.urandom(32)
    x["ssec_body"] = MARK + os.urandom(100 * 1024)
    s3.put_object(Bucket="mig-kms", Key="customer.bin", Body=x["ssec_body"],
                  SSECustomerAlgorithm="AES256", SSECustomerKey=x["ssec_key"])
    part = MARK + os.urandom(5 * 1024 * 1024)
    up = s3.create_multipart_upload(Bucket="mig-kms", Key="multi.bin")
    e1 = s3.upload_part(Bucket="mig-kms", Key="multi.bin", UploadId=up["UploadId"], PartNumber=1, Body=part)["ETag"]
    e2 = s3.upload_part(Bucket="mig-kms", Key="multi.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"tail")["ETag"]
    s3.complete_multipart_upload(Bucket="mig-kms", Key="multi.bin", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    x["multi"] = part + b"tail"
    x["multi_etag"] = s3.head_object(Bucket="mig-kms", Key="multi.bin")["ETag"]
    open_up = s3.create_multipart_upload(Bucket="mig-kms", Key="open.bin")["UploadId"]
    x["open_part"] = MARK + os.urandom(5 * 1024 * 1024)
    x["open_e1"] = s3.upload_part(Bucket="mig-kms", Key="open.bin", UploadId=open_up, PartNumber=1,
                                  Body=x["open_part"])["ETag"]
    x["open_upload"] = open_up

    # Versions: two objects and a delete marker on one key; a suspended null version.
    s3.create_bucket(Bucket="mig-ver")
    s3.put_bucket_versioning(Bucket="mig-ver", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="mig-ver", Key="doc", Body=b"v1")
    s3.put_object(Bucket="mig-ver", Key="doc", Body=MARK + os.urandom(70 * 1024))
    s3.delete_object(Bucket="mig-ver", Key="doc")
    x["versions"] = s3.list_object_versions(Bucket="mig-ver")

    # The archive tier, and account-level Block Public Access.
    s3.create_bucket(Bucket="mig-cold")
    x["cold"] = MARK + os.urandom(64 * 1024)
    s3.put_object(Bucket="mig-cold", Key="cold.bin", Body=x["cold"], StorageClass="GLACIER")
    control(s).put_public_access_block(AccountId=account, PublicAccessBlockConfiguration={
        "BlockPublicPolicy": True})
    return x


def without_meta(listing):
    keep = ("Key", "VersionId", "IsLatest", "ETag", "Size")
    return ([{k: v[k] for k in keep if k in v} for v in listing.get("Versions", [])],
            [{k: v[k] for k in ("Key", "VersionId", "IsLatest")} for v in listing.get("DeleteMarkers", [])])


def files(root: Path) -> set:
    return {p for p in root.rglob("*") if p.is_file()}


def test_an_embedded_deployment_moves_to_postgres_whole(schema):
    with tempfile.TemporaryDirectory(prefix="coffer-migrate-") as d:
        d = Path(d)
        src = d / "embedded"
        src.mkdir()
        root_key = base64.b64encode(os.urandom(32)).decode()
        env = {"COFFER_ROOT_KEY": root_key, **DAY}
        s = Server(src, extra_args=["--allow-insecure-sse-c"], env=env).start()
        try:
            x = populate(s)
            # The source must be stopped: its data directory is locked while it runs.
            busy = migrate("--from", str(src), "--to", url_in(schema), "--blobs", str(d / "blobs"),
                           "--audit-dir", str(d / "audit"), env=env)
            assert busy.returncode != 0 and "stop its server" in busy.stderr, busy.stderr
        finally:
            s.stop()

        blobs, cold, audit = d / "blobs", d / "cold", d / "audit"
        args = ["--from", str(src), "--to", url_in(schema), "--blobs", str(blobs),
                "--archive-dir", str(cold), "--audit-dir", str(audit)]
        # Without an archive directory for the GLACIER object: refused, nothing written.
        no_cold = migrate(*[a for a in args if a not in ("--archive-dir", str(cold))], env=env)
        assert no_cold.returncode != 0 and "--archive-dir" in no_cold.stderr, no_cold.stderr
        assert psql(f"SELECT count(*) FROM {schema}.buckets") == "0"
        assert not (audit / "node-migrated").exists()
        done = migrate(*args, env=env)
        assert done.returncode == 0, done.stderr
        moved = json.loads(done.stdout)
        assert moved["buckets"] == 4 and moved["uploads"] == 1 and moved["parts"] == 1, moved
        assert moved["delete_markers"] == 1 and moved["kms_keys"] >= 3, moved
        assert moved["root_access_key_id"] == ACCESS_KEY
        assert ACCESS_KEY in done.stderr
        # Into a database that holds a deployment: refused.
        again = migrate(*args[:-1], str(d / "audit2"), env=env)
        assert again.returncode != 0 and "already holds a deployment" in again.stderr, again.stderr
        assert not (d / "audit2").exists()
        # A root key in a PKCS#11 token, or a rotation left unfinished: refused before
        # anything is read.
        for leftover, says in [("root-key-hsm.json", "PKCS#11"), ("root.key.next", "unfinished root-key rotation")]:
            (src / leftover).write_text("{}")
            refused = migrate(*args[:-1], str(d / "audit3"), env=env)
            (src / leftover).unlink()
            assert refused.returncode != 0 and says in refused.stderr, refused.stderr

        # No plaintext of an encrypted object in the blob tier or the archive.
        assert len(files(blobs)) >= 6 and len(files(cold)) == 1
        assert not any(MARK in p.read_bytes() for p in files(blobs) | files(cold))

        node = Server(d / "node", extra_args=["--meta", url_in(schema), "--blobs", str(blobs),
                                               "--archive-dir", str(cold), "--audit-dir", str(audit),
                                               "--allow-insecure-sse-c"], env=env).start()
        try:
            check_everything(node, x)
            verify = subprocess.run(
                [coffer_bin(), "audit", "verify", "--data-dir", str(node.data_dir), "--meta", url_in(schema),
                 "--audit-dir", str(audit)], capture_output=True, text=True, env={**os.environ, **env})
            assert verify.returncode == 0 and "audit trail intact" in verify.stdout, verify.stdout + verify.stderr
        finally:
            node.stop()


def check_everything(node, x):
    s3, kms, iam = node.client(), node.client("kms"), node.client("iam")
    assert node.client("sts").get_caller_identity()["Account"] == x["account"]
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["mig-cold", "mig-kms", "mig-plain", "mig-ver"]

    # Objects, under every SSE mode.
    got = s3.get_object(Bucket="mig-plain", Key="small.txt")
    assert got["Body"].read() == x["small"] and got["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket="mig-plain", Key="dir/large.bin")
    assert got["Body"].read() == x["large"] and got["TagCount"] == 1
    assert s3.get_object_tagging(Bucket="mig-plain", Key="dir/large.bin")["TagSet"] == [{"Key": "team", "Value": "blue"}]
    assert "DeleteBucket" in s3.get_bucket_policy(Bucket="mig-plain")["Policy"]
    got = s3.get_object(Bucket="mig-kms", Key="secret.bin")
    assert got["Body"].read() == x["kms_body"]
    assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"].endswith(x["key"])
    assert got["BucketKeyEnabled"] is True
    enc = s3.get_bucket_encryption(Bucket="mig-kms")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert enc["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].endswith(x["key"])
    ssec = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=x["ssec_key"])
    assert s3.get_object(Bucket="mig-kms", Key="customer.bin", **ssec)["Body"].read() == x["ssec_body"]
    assert err(s3.get_object, Bucket="mig-kms", Key="customer.bin") == "InvalidRequest"
    got = s3.get_object(Bucket="mig-kms", Key="multi.bin")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(x["multi"]).digest()
    assert got["ETag"] == x["multi_etag"]
    # The upload in progress goes on where it was.
    ups = s3.list_multipart_uploads(Bucket="mig-kms")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("open.bin", x["open_upload"])]
    parts = s3.list_parts(Bucket="mig-kms", Key="open.bin", UploadId=x["open_upload"])["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, x["open_e1"])]
    e2 = s3.upload_part(Bucket="mig-kms", Key="open.bin", UploadId=x["open_upload"], PartNumber=2, Body=b"end")["ETag"]
    s3.complete_multipart_upload(Bucket="mig-kms", Key="open.bin", UploadId=x["open_upload"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": x["open_e1"]}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket="mig-kms", Key="open.bin")["Body"].read() == x["open_part"] + b"end"

    # Versions, markers and their order; a new version goes on top.
    assert without_meta(s3.list_object_versions(Bucket="mig-ver")) == without_meta(x["versions"])
    oldest = x["versions"]["Versions"][-1]["VersionId"]
    assert s3.get_object(Bucket="mig-ver", Key="doc", VersionId=oldest)["Body"].read() == b"v1"
    assert err(s3.get_object, Bucket="mig-ver", Key="doc") == "NoSuchKey"
    new = s3.put_object(Bucket="mig-ver", Key="doc", Body=b"v3")["VersionId"]
    listed = s3.list_object_versions(Bucket="mig-ver")
    assert listed["Versions"][0]["VersionId"] == new and listed["Versions"][0]["IsLatest"]
    assert len(listed["Versions"]) == 3 and len(listed["DeleteMarkers"]) == 1

    # The archive tier: archived still, readable once restored.
    head = s3.head_object(Bucket="mig-cold", Key="cold.bin")
    assert head["StorageClass"] == "GLACIER"
    assert err(s3.get_object, Bucket="mig-cold", Key="cold.bin") == "InvalidObjectState"
    s3.restore_object(Bucket="mig-cold", Key="cold.bin",
                      RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}})
    wait_for("the restore", lambda: 'ongoing-request="false"' in
             s3.head_object(Bucket="mig-cold", Key="cold.bin").get("Restore", ""))
    assert s3.get_object(Bucket="mig-cold", Key="cold.bin")["Body"].read() == x["cold"]
    bpa = control(node).get_public_access_block(AccountId=x["account"])["PublicAccessBlockConfiguration"]
    assert bpa["BlockPublicPolicy"] is True

    # The KMS: old and new material, the alias, the grant, the HMAC key, the key pending
    # deletion.
    assert kms.decrypt(CiphertextBlob=x["old_ciphertext"])["Plaintext"] == b"before rotation"
    assert kms.decrypt(CiphertextBlob=x["new_ciphertext"])["Plaintext"] == b"after rotation"
    assert len(kms.list_key_rotations(KeyId=x["key"])["Rotations"]) == 1
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == x["key"]
    assert [g["GrantId"] for g in kms.list_grants(KeyId=x["key"])["Grants"]] == [x["grant"]]
    assert kms.verify_mac(KeyId=x["hmac"], Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=x["mac"])["MacValid"]
    assert kms.describe_key(KeyId=x["doomed"])["KeyMetadata"]["KeyState"] == "PendingDeletion"

    # IAM: the user's access key authenticates, and the user's policy holds.
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["reader"]
    reader = node.client(access_key=x["reader"]["AccessKeyId"], secret_key=x["reader"]["SecretAccessKey"])
    assert reader.get_object(Bucket="mig-plain", Key="small.txt")["Body"].read() == x["small"]
    assert err(reader.put_object, Bucket="mig-plain", Key="no", Body=b"x") == "AccessDenied"

    # The trail: calls made before the move are looked up through the node.
    ct = node.client("cloudtrail")
    made = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}])
    names = {json.loads(e["CloudTrailEvent"])["requestParameters"]["bucketName"] for e in made["Events"]}
    assert names >= {"mig-plain", "mig-kms", "mig-ver", "mig-cold"}
