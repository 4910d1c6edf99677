"""Accounts (tenants): `coffer account create|list|delete` against a running server, and
isolation between tenants: tenant B sees none of A's buckets or keys and can use none of
A's keys, even by full ARN; a bucket policy plus a key policy granting B make cross-account
reads work (both sides must allow, as on AWS)."""

import json
import os
import subprocess
import tempfile

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, coffer_bin, tls_server
from test_iam import code


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-tenants-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def account_cmd(srv, *args, access=ACCESS_KEY, secret=SECRET_KEY, check=True):
    env = dict(os.environ, COFFER_ROOT_ACCESS_KEY_ID=access, COFFER_ROOT_SECRET_ACCESS_KEY=secret)
    p = subprocess.run([coffer_bin(), "account", *args, "--endpoint", srv.endpoint],
                       capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p


class Tenant:
    def __init__(self, srv, name):
        self.info = account_cmd(srv, "create", name)
        assert set(self.info) == {"AccountId", "Name", "AccessKeyId", "SecretAccessKey"}, self.info
        assert self.info["Name"] == name and len(self.info["AccountId"]) == 12, self.info
        self.id = self.info["AccountId"]
        self.srv = srv

    def client(self, service):
        return self.srv.client(service, access_key=self.info["AccessKeyId"], secret_key=self.info["SecretAccessKey"])

    def aws(self, *args, **kw):
        env = {"AWS_ACCESS_KEY_ID": self.info["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": self.info["SecretAccessKey"]}
        return self.srv.aws(*args, env=env, **kw)


def test_accounts_are_created_listed_and_deleted_by_the_operator_only(srv):
    t = Tenant(srv, "lifecycle")
    ids = {a["AccountId"]: a["Name"] for a in account_cmd(srv, "list")["Accounts"]}
    assert ids[t.id] == "lifecycle" and "default" in ids.values(), ids
    me = t.client("sts").get_caller_identity()
    assert me["Account"] == t.id and me["Arn"] == f"arn:aws:iam::{t.id}:root", me
    # Names are unique; only the operator manages accounts.
    dup = account_cmd(srv, "create", "LIFECYCLE", check=False)
    assert dup.returncode != 0 and "EntityAlreadyExists" in dup.stderr, dup.stderr
    p = account_cmd(srv, "create", "sneaky", access=t.info["AccessKeyId"], secret=t.info["SecretAccessKey"], check=False)
    assert p.returncode != 0 and "AccessDenied" in p.stderr, p.stderr
    p = account_cmd(srv, "create", "wrong-secret", secret="x" * 40, check=False)
    assert p.returncode != 0 and "SignatureDoesNotMatch" in p.stderr, p.stderr
    # An account that owns a bucket cannot be deleted; once empty it can, and its keys die.
    t.client("s3").create_bucket(Bucket="lifecycle-bucket")
    p = account_cmd(srv, "delete", t.id, check=False)
    assert p.returncode != 0 and "DeleteConflict" in p.stderr, p.stderr
    t.client("s3").delete_bucket(Bucket="lifecycle-bucket")
    account_cmd(srv, "delete", t.id)
    assert t.id not in {a["AccountId"] for a in account_cmd(srv, "list")["Accounts"]}
    assert code(t.client("s3").list_buckets) == (403, "InvalidAccessKeyId")
    default_id = srv.client("sts").get_caller_identity()["Account"]
    p = account_cmd(srv, "delete", default_id, check=False)
    assert p.returncode != 0 and "DeleteConflict" in p.stderr, p.stderr


def test_tenants_are_isolated_and_cross_account_access_needs_both_policies(srv):
    a, b = Tenant(srv, "tenant-a"), Tenant(srv, "tenant-b")
    a_s3, a_kms = a.client("s3"), a.client("kms")
    b_s3, b_kms = b.client("s3"), b.client("kms")

    key = a_kms.create_key(Description="A's key")["KeyMetadata"]
    a_kms.create_alias(AliasName="alias/a-key", TargetKeyId=key["KeyId"])
    a_s3.create_bucket(Bucket="a-private")
    a_s3.put_object(Bucket="a-private", Key="secret.txt", Body=b"A's data", ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=key["Arn"])
    blob = a_kms.encrypt(KeyId=key["Arn"], Plaintext=b"A's secret")["CiphertextBlob"]

    # B lists none of A's buckets or keys (nor does the operator's own account).
    assert [x["Name"] for x in b_s3.list_buckets()["Buckets"]] == []
    assert "a-private" not in [x["Name"] for x in srv.client("s3").list_buckets()["Buckets"]]
    assert key["KeyId"] not in [k["KeyId"] for k in b_kms.list_keys()["Keys"]]
    assert "alias/a-key" not in [x["AliasName"] for x in b_kms.list_aliases()["Aliases"]]
    # B reads nothing of A's, by name or by full ARN.
    assert code(b_s3.get_object, Bucket="a-private", Key="secret.txt") == (403, "AccessDenied")
    assert code(b_s3.list_objects_v2, Bucket="a-private") == (403, "AccessDenied")
    assert code(b_s3.put_object, Bucket="a-private", Key="x", Body=b"x") == (403, "AccessDenied")
    assert code(b_s3.create_bucket, Bucket="a-private") == (409, "BucketAlreadyExists")
    assert code(b_kms.describe_key, KeyId=key["KeyId"]) == (400, "NotFoundException")
    assert code(b_kms.describe_key, KeyId=key["Arn"]) == (400, "AccessDeniedException")
    assert code(b_kms.encrypt, KeyId=key["Arn"], Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(b_kms.generate_data_key, KeyId=key["Arn"], KeySpec="AES_256") == (400, "AccessDeniedException")
    assert code(b_kms.decrypt, CiphertextBlob=blob) == (400, "AccessDeniedException")
    assert code(b_kms.disable_key, KeyId=key["Arn"]) == (400, "NotFoundException")
    assert code(b_kms.schedule_key_deletion, KeyId=key["Arn"]) == (400, "NotFoundException")
    p = b.aws("kms", "decrypt", "--ciphertext-blob", "fileb:///dev/stdin", input=blob, check=False)
    assert p.returncode != 0 and b"AccessDeniedException" in p.stderr, p.stderr
    # B's own SSE-KMS writes may not use A's key either.
    b_s3.create_bucket(Bucket="b-own")
    assert code(b_s3.put_object, Bucket="b-own", Key="k", Body=b"x", ServerSideEncryption="aws:kms",
                SSEKMSKeyId=key["Arn"]) == (403, "AccessDenied")

    # A grants B read on the bucket: S3 lets B in, but the key policy still says no.
    a_s3.put_bucket_policy(Bucket="a-private", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "B reads", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b.id}:root"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a-private/*"}]}))
    assert code(b_s3.get_object, Bucket="a-private", Key="secret.txt") == (403, "AccessDenied")
    assert code(b_s3.list_objects_v2, Bucket="a-private") == (403, "AccessDenied")
    # A's key policy grants B's account decrypt: now the cross-account read works.
    policy = json.loads(a_kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "B decrypts via S3", "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{b.id}:root"}, "Action": "kms:Decrypt",
                                "Resource": "*"})
    a_kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    assert b_s3.get_object(Bucket="a-private", Key="secret.txt")["Body"].read() == b"A's data"
    p = b.aws("s3", "cp", "s3://a-private/secret.txt", "-")
    assert p.stdout == "A's data"
    assert b_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"A's secret"
    # Only what was granted: B still cannot encrypt with the key or write the bucket.
    assert code(b_kms.encrypt, KeyId=key["Arn"], Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(b_s3.put_object, Bucket="a-private", Key="x", Body=b"x") == (403, "AccessDenied")
    # A user of B needs B's own IAM policy too (both sides must allow).
    b_iam = b.client("iam")
    b_iam.create_user(UserName="bob")
    k = b_iam.create_access_key(UserName="bob")["AccessKey"]
    bob_s3 = srv.client("s3", access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert code(bob_s3.get_object, Bucket="a-private", Key="secret.txt") == (403, "AccessDenied")
    b_iam.put_user_policy(UserName="bob", PolicyName="read-a", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"],
                                                "Resource": "*"}]}))
    assert bob_s3.get_object(Bucket="a-private", Key="secret.txt")["Body"].read() == b"A's data"


def test_a_role_can_be_assumed_across_accounts_when_both_sides_allow(srv):
    a, b = Tenant(srv, "role-owner"), Tenant(srv, "role-user")
    a_s3, a_iam = a.client("s3"), a.client("iam")
    a_s3.create_bucket(Bucket="role-owner-data")
    a_s3.put_object(Bucket="role-owner-data", Key="k", Body=b"shared via role")
    role_arn = a_iam.create_role(RoleName="partner", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b.id}:root"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    a_iam.put_role_policy(RoleName="partner", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "arn:aws:s3:::role-owner-data/*"}]}))
    # A third account the trust policy does not name is refused.
    c = Tenant(srv, "role-stranger")
    assert code(c.client("sts").assume_role, RoleArn=role_arn, RoleSessionName="x1") == (403, "AccessDenied")
    # B's user needs B's own permission too (both sides must allow across accounts).
    b_iam = b.client("iam")
    b_iam.create_user(UserName="worker")
    k = b_iam.create_access_key(UserName="worker")["AccessKey"]
    worker_sts = srv.client("sts", access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert code(worker_sts.assume_role, RoleArn=role_arn, RoleSessionName="w1") == (403, "AccessDenied")
    b_iam.put_user_policy(UserName="worker", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}))
    cred = worker_sts.assume_role(RoleArn=role_arn, RoleSessionName="w1")["Credentials"]
    import boto3
    s = boto3.client("s3", endpoint_url=srv.endpoint, region_name="us-east-1",
                     aws_access_key_id=cred["AccessKeyId"], aws_secret_access_key=cred["SecretAccessKey"],
                     aws_session_token=cred["SessionToken"])
    assert s.get_object(Bucket="role-owner-data", Key="k")["Body"].read() == b"shared via role"
    # The session acts as A's role: it sees A's buckets, none of B's.
    b.client("s3").create_bucket(Bucket="role-user-own")
    assert code(s.head_bucket, Bucket="role-user-own")[0] == 403


def test_restrict_public_buckets_keeps_other_accounts_out_of_a_public_bucket(srv):
    """A new bucket blocks public access. With BlockPublicPolicy lifted, a public policy
    can be set, but while RestrictPublicBuckets is on it grants other accounts nothing;
    turning it off lets the public policy work across accounts (SSE-S3 objects need no key
    policy)."""
    a, b = Tenant(srv, "public-owner"), Tenant(srv, "public-reader")
    a_s3, b_s3 = a.client("s3"), b.client("s3")
    a_s3.create_bucket(Bucket="a-public")
    a_s3.put_object(Bucket="a-public", Key="doc", Body=b"for everyone")
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a-public/*"}]})
    assert code(a_s3.put_bucket_policy, Bucket="a-public", Policy=public) == (403, "AccessDenied")
    a_s3.put_public_access_block(Bucket="a-public", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    a_s3.put_bucket_policy(Bucket="a-public", Policy=public)
    assert code(b_s3.get_object, Bucket="a-public", Key="doc") == (403, "AccessDenied")
    # The owner's account is not restricted.
    assert a_s3.get_object(Bucket="a-public", Key="doc")["Body"].read() == b"for everyone"
    a_s3.put_public_access_block(Bucket="a-public", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    assert b_s3.get_object(Bucket="a-public", Key="doc")["Body"].read() == b"for everyone"
    # Only a public policy is restricted: a policy naming B's account keeps working.
    a_s3.put_public_access_block(Bucket="a-public", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    a_s3.put_bucket_policy(Bucket="a-public", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b.id}:root"}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::a-public/*"}]}))
    assert b_s3.get_object(Bucket="a-public", Key="doc")["Body"].read() == b"for everyone"


def test_admin_commands_find_the_server_through_aws_endpoint_url(srv):
    """As the AWS CLI and SDKs do: without --endpoint (and COFFER_ENDPOINT), the
    AWS_ENDPOINT_URL variable names the server; --endpoint still wins over it."""
    env = {k: v for k, v in os.environ.items() if k != "COFFER_ENDPOINT"}
    env.update(COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_ENDPOINT_URL=srv.endpoint)
    p = subprocess.run([coffer_bin(), "account", "list"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "Accounts" in json.loads(p.stdout)
    p = subprocess.run([coffer_bin(), "account", "list", "--endpoint", "http://127.0.0.1:9"],
                       capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "127.0.0.1:9" in p.stderr


def test_admin_commands_speak_https_and_check_the_certificate():
    """An https:// endpoint is checked against AWS_CA_BUNDLE (or --ca-bundle), as the AWS
    CLI checks it, else the system's certificates; a certificate nobody vouches for is
    refused, not ignored."""
    with tls_server("coffer-admin-tls-") as s:
        cert = s.data_dir.parent / "cert.pem"
        env = {k: v for k, v in os.environ.items() if k not in ("COFFER_ENDPOINT", "AWS_CA_BUNDLE")}
        env.update(COFFER_ROOT_ACCESS_KEY_ID=ACCESS_KEY, COFFER_ROOT_SECRET_ACCESS_KEY=SECRET_KEY,
                   AWS_ENDPOINT_URL=s.endpoint)
        p = subprocess.run([coffer_bin(), "account", "list"], capture_output=True, text=True, env=env)
        assert p.returncode != 0 and "TLS" in p.stderr, p.stderr
        for extra_env, args in (({"AWS_CA_BUNDLE": str(cert)}, []), ({}, ["--ca-bundle", str(cert)])):
            p = subprocess.run([coffer_bin(), "account", "list", *args], capture_output=True, text=True,
                               env={**env, **extra_env})
            assert p.returncode == 0, p.stderr
            assert "Accounts" in json.loads(p.stdout)
        # The name checked is the endpoint's: localhost is in the certificate too.
        port = s.endpoint.rsplit(":", 1)[1]
        p = subprocess.run([coffer_bin(), "account", "create", "over-tls", "--endpoint", f"https://localhost:{port}"],
                           capture_output=True, text=True, env={**env, "AWS_CA_BUNDLE": str(cert)})
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["Name"] == "over-tls"
