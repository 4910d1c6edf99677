"""KMS grants through the aws CLI and boto3: a grant lets its grantee use a key the key
policy and IAM do not let it use, for the listed operations and under its encryption-context
constraints; it cannot lift an explicit deny; it can be listed, retired and revoked; and it
counts when S3 uses the key for the grantee (SSE-KMS)."""

import json
import tempfile

import pytest

from conftest import Server
from test_iam import as_user, code, new_user


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-grants-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def test_grants_allow_listed_operations_under_their_constraints(srv):
    acct = srv.client("sts").get_caller_identity()["Account"]
    kms = srv.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    app = new_user(srv, "grant-app")
    app_kms = as_user(srv, "kms", app)
    app_arn = f"arn:aws:iam::{acct}:user/grant-app"
    root_arn = f"arn:aws:iam::{acct}:root"
    assert code(app_kms.encrypt, KeyId=key, Plaintext=b"x") == (400, "AccessDeniedException")

    g = srv.aws("kms", "create-grant", "--key-id", key, "--grantee-principal", app_arn,
                "--retiring-principal", root_arn, "--operations", "Encrypt", "Decrypt",
                "--constraints", "EncryptionContextSubset={tenant=t1}", "--name", "app-t1", expect_json=True)
    assert len(g["GrantId"]) == 64 and g["GrantToken"], g
    # Idempotent by name and parameters.
    again = kms.create_grant(KeyId=key, GranteePrincipal=app_arn, RetiringPrincipal=root_arn,
                             Operations=["Decrypt", "Encrypt"], Name="app-t1",
                             Constraints={"EncryptionContextSubset": {"tenant": "t1"}})
    assert again["GrantId"] == g["GrantId"]

    ok = app_kms.encrypt(KeyId=key, Plaintext=b"hello", EncryptionContext={"tenant": "t1", "extra": "y"})
    assert app_kms.decrypt(CiphertextBlob=ok["CiphertextBlob"],
                           EncryptionContext={"tenant": "t1", "extra": "y"})["Plaintext"] == b"hello"
    assert code(app_kms.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "t2"}) == \
        (400, "AccessDeniedException")
    assert code(app_kms.encrypt, KeyId=key, Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(app_kms.generate_data_key, KeyId=key, KeySpec="AES_256",
                EncryptionContext={"tenant": "t1"}) == (400, "AccessDeniedException")
    # Disabled keys still refuse, grant or not.
    kms.disable_key(KeyId=key)
    assert code(app_kms.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "t1"}) == \
        (400, "DisabledException")
    kms.enable_key(KeyId=key)

    listed = srv.aws("kms", "list-grants", "--key-id", key, expect_json=True)["Grants"]
    assert [(x["GrantId"], x["GranteePrincipal"], x["Name"], sorted(x["Operations"])) for x in listed] == \
        [(g["GrantId"], app_arn, "app-t1", ["Decrypt", "Encrypt"])], listed
    assert listed[0]["Constraints"] == {"EncryptionContextSubset": {"tenant": "t1"}}
    assert [x["GrantId"] for x in kms.list_retirable_grants(RetiringPrincipal=root_arn)["Grants"]] == [g["GrantId"]]

    # The grantee may not retire a grant that does not say so; the retiring principal may.
    assert code(app_kms.retire_grant, GrantToken=again["GrantToken"]) == (400, "AccessDeniedException")
    kms.retire_grant(GrantToken=again["GrantToken"])
    assert kms.list_grants(KeyId=key)["Grants"] == []
    assert code(app_kms.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "t1"}) == \
        (400, "AccessDeniedException")
    assert code(kms.retire_grant, GrantToken=again["GrantToken"]) == (400, "InvalidGrantTokenException")

    # A grant that includes RetireGrant lets its grantee retire it; RevokeGrant is the owner's.
    g2 = kms.create_grant(KeyId=key, GranteePrincipal=app_arn, Operations=["Encrypt", "RetireGrant"])
    app_kms.encrypt(KeyId=key, Plaintext=b"x")
    app_kms.retire_grant(KeyId=key, GrantId=g2["GrantId"])
    g3 = kms.create_grant(KeyId=key, GranteePrincipal=app_arn, Operations=["Encrypt"])
    assert code(app_kms.revoke_grant, KeyId=key, GrantId=g3["GrantId"]) == (400, "AccessDeniedException")
    srv.aws("kms", "revoke-grant", "--key-id", key, "--grant-id", g3["GrantId"])
    assert code(kms.revoke_grant, KeyId=key, GrantId=g3["GrantId"]) == (400, "NotFoundException")
    # Bad operations are refused and create nothing.
    assert code(kms.create_grant, KeyId=key, GranteePrincipal=app_arn, Operations=["ScheduleKeyDeletion"])[1] == \
        "ValidationException"
    assert kms.list_grants(KeyId=key)["Grants"] == []


def test_a_grant_cannot_lift_an_explicit_deny_and_counts_through_s3(srv):
    acct = srv.client("sts").get_caller_identity()["Account"]
    kms = srv.client("kms")
    s3 = srv.client("s3")
    worker = new_user(srv, "grant-worker")
    worker_arn = f"arn:aws:iam::{acct}:user/grant-worker"
    srv.aws("iam", "put-user-policy", "--user-name", "grant-worker", "--policy-name", "s3", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::grant-b/*"}]}))
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="grant-b")
    w_s3 = as_user(srv, "s3", worker)
    put = dict(Bucket="grant-b", Key="o", Body=b"via grant", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert code(w_s3.put_object, **put) == (403, "AccessDenied")
    kms.create_grant(KeyId=key, GranteePrincipal=worker_arn, Operations=["GenerateDataKey", "Decrypt"])
    w_s3.put_object(**put)
    assert w_s3.get_object(Bucket="grant-b", Key="o")["Body"].read() == b"via grant"
    # An explicit deny in the key policy wins over the grant.
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": worker_arn}, "Action": "kms:Decrypt", "Resource": "*"}]}))
    assert code(w_s3.get_object, Bucket="grant-b", Key="o") == (403, "AccessDenied")
