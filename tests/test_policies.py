"""Resource policies through the stock aws CLI and boto3: bucket policies (the classic
"deny unencrypted uploads" policy, validation, the owner's lock-out protection, the public
access block) and key policies (the key policy is primary; an SSE-KMS PUT needs
kms:GenerateDataKey and a GET kms:Decrypt; kms:ViaService and kms:EncryptionContext keep a
key usable only through S3, for one bucket)."""

import base64
import json
import tempfile

import pytest
from botocore.exceptions import ClientError

from conftest import Server
from test_iam import as_user, code, new_user


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-policies-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def account_id(srv):
    return srv.client("sts").get_caller_identity()["Account"]


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return False


def require_kms_policy(bucket, key_arn):
    """The policy AWS's documentation gives for requiring SSE-KMS with one key."""
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                dict(deny, Sid="DenyIncorrectEncryptionHeader",
                     Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}),
                dict(deny, Sid="DenyUnencryptedObjectUploads",
                     Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}}),
                dict(deny, Sid="DenyOtherKeys",
                     Condition={"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}),
            ],
        }
    )


def test_bucket_policy_denies_uploads_unless_sse_kms_with_the_given_key(srv, tmp_path):
    s3, kms = srv.client("s3"), srv.client("kms")
    good = kms.create_key()["KeyMetadata"]["Arn"]
    other = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="kms-only")
    srv.aws("s3api", "put-bucket-policy", "--bucket", "kms-only", "--policy", require_kms_policy("kms-only", good))
    assert json.loads(s3.get_bucket_policy(Bucket="kms-only")["Policy"])["Statement"][0]["Sid"] == "DenyIncorrectEncryptionHeader"

    # Plaintext and SSE-S3 uploads are denied, and nothing is written.
    assert code(s3.put_object, Bucket="kms-only", Key="plain", Body=b"p") == (403, "AccessDenied")
    assert code(s3.put_object, Bucket="kms-only", Key="aes", Body=b"p", ServerSideEncryption="AES256") == (403, "AccessDenied")
    assert code(s3.put_object, Bucket="kms-only", Key="other", Body=b"p", ServerSideEncryption="aws:kms",
                SSEKMSKeyId=other) == (403, "AccessDenied")
    assert code(s3.create_multipart_upload, Bucket="kms-only", Key="mpu") == (403, "AccessDenied")
    for k in ("plain", "aes", "other"):
        assert not exists(s3, "kms-only", k)

    # SSE-KMS with the required key is allowed, by boto3 and by the aws CLI.
    r = s3.put_object(Bucket="kms-only", Key="good", Body=b"secret", ServerSideEncryption="aws:kms", SSEKMSKeyId=good)
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == good, r
    src = tmp_path / "f.txt"
    src.write_bytes(b"from the cli")
    denied = srv.aws("s3", "cp", str(src), "s3://kms-only/cli-plain", check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr, denied.stderr
    srv.aws("s3", "cp", str(src), "s3://kms-only/cli-kms", "--sse", "aws:kms", "--sse-kms-key-id", good)
    assert s3.head_object(Bucket="kms-only", Key="cli-kms")["SSEKMSKeyId"] == good
    assert s3.get_object(Bucket="kms-only", Key="good")["Body"].read() == b"secret"

    # Deleting the policy lifts the requirement.
    s3.delete_bucket_policy(Bucket="kms-only")
    assert code(s3.get_bucket_policy, Bucket="kms-only") == (404, "NoSuchBucketPolicy")
    s3.put_object(Bucket="kms-only", Key="plain", Body=b"p")


def test_malformed_bucket_policies_are_refused_and_change_nothing(srv):
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="strict")
    good = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::strict/*"}]})
    s3.put_bucket_policy(Bucket="strict", Policy=good)
    for bad in [
        "{not json",
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::strict/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                   "Resource": "arn:aws:s3:::someone-elses/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt",
                                   "Resource": "arn:aws:s3:::strict/*"}]}),
        json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject",
                                   "Resource": "arn:aws:s3:::strict/*"}]}),
    ]:
        assert code(s3.put_bucket_policy, Bucket="strict", Policy=bad) == (400, "MalformedPolicy"), bad
    assert s3.get_bucket_policy(Bucket="strict")["Policy"] == good
    s3.put_object(Bucket="strict", Key="k", Body=b"x")
    assert code(s3.delete_object, Bucket="strict", Key="k") == (403, "AccessDenied")
    assert exists(s3, "strict", "k")


def test_a_policy_cannot_lock_out_the_owner_and_public_policies_can_be_blocked(srv):
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="locked")
    deny_all = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::locked", "arn:aws:s3:::locked/*"]}]})
    s3.put_bucket_policy(Bucket="locked", Policy=deny_all)
    assert code(s3.list_objects_v2, Bucket="locked") == (403, "AccessDenied")
    # The owner's root may still read, replace and delete the policy.
    assert s3.get_bucket_policy(Bucket="locked")["Policy"] == deny_all
    s3.delete_bucket_policy(Bucket="locked")
    s3.list_objects_v2(Bucket="locked")

    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::locked/*"}]})
    srv.aws("s3api", "put-public-access-block", "--bucket", "locked", "--public-access-block-configuration",
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
    cfg = s3.get_public_access_block(Bucket="locked")["PublicAccessBlockConfiguration"]
    assert cfg == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                   "RestrictPublicBuckets": True}, cfg
    assert code(s3.put_bucket_policy, Bucket="locked", Policy=public) == (403, "AccessDenied")
    assert code(s3.get_bucket_policy, Bucket="locked") == (404, "NoSuchBucketPolicy")
    s3.delete_public_access_block(Bucket="locked")
    assert code(s3.get_public_access_block, Bucket="locked") == (404, "NoSuchPublicAccessBlockConfiguration")
    s3.put_bucket_policy(Bucket="locked", Policy=public)
    assert s3.get_bucket_policy_status(Bucket="locked")["PolicyStatus"]["IsPublic"] is True


def test_a_bucket_policy_grants_a_user_of_the_same_account(srv):
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="shared-in-account")
    s3.put_object(Bucket="shared-in-account", Key="doc", Body=b"hello")
    key = new_user(srv, "policy-reader")
    user_s3 = as_user(srv, "s3", key)
    assert code(user_s3.get_object, Bucket="shared-in-account", Key="doc") == (403, "AccessDenied")
    acct = account_id(srv)
    s3.put_bucket_policy(Bucket="shared-in-account", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:user/policy-reader"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-in-account/*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:user/policy-reader"},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::shared-in-account",
         "Condition": {"StringEquals": {"s3:prefix": "public/"}}}]}))
    assert user_s3.get_object(Bucket="shared-in-account", Key="doc")["Body"].read() == b"hello"
    # s3:prefix: listing is allowed for that prefix only.
    user_s3.list_objects_v2(Bucket="shared-in-account", Prefix="public/")
    assert code(user_s3.list_objects_v2, Bucket="shared-in-account") == (403, "AccessDenied")
    assert code(user_s3.put_object, Bucket="shared-in-account", Key="x", Body=b"x") == (403, "AccessDenied")


def via_s3_key_policy(acct, user, bucket, region="us-east-1"):
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM policies", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Decrypt only through S3, for one bucket", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{acct}:user/{user}"},
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {
                 "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                 "StringLike": {"kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}/*"},
             }},
        ],
    })


def test_key_policy_allows_decrypt_only_through_s3_for_one_bucket(srv):
    acct = account_id(srv)
    s3, kms = srv.client("s3"), srv.client("kms")
    key = new_user(srv, "via-s3")
    srv.aws("iam", "put-user-policy", "--user-name", "via-s3", "--policy-name", "read-both", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": ["arn:aws:s3:::via-a/*", "arn:aws:s3:::via-b/*"]}]}))
    kid = srv.aws("kms", "create-key", "--policy", via_s3_key_policy(acct, "via-s3", "via-a"),
                  expect_json=True)["KeyMetadata"]["Arn"]
    for b in ("via-a", "via-b"):
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="obj", Body=f"in {b}".encode(), ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)

    user_s3, user_kms = as_user(srv, "s3", key), as_user(srv, "kms", key)
    # Through S3, for the bucket the key policy names: works.
    assert user_s3.get_object(Bucket="via-a", Key="obj")["Body"].read() == b"in via-a"
    p = srv.aws("s3", "cp", "s3://via-a/obj", "-", env={"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]})
    assert p.stdout == "in via-a"
    # Another bucket's objects under the same key: denied.
    status, err = code(user_s3.get_object, Bucket="via-b", Key="obj")
    assert (status, err) == (403, "AccessDenied")
    # Direct use of the key by the same user, even with the S3 encryption context: denied.
    blob = kms.encrypt(KeyId=kid, Plaintext=b"data",
                       EncryptionContext={"aws:s3:arn": "arn:aws:s3:::via-a/obj"})["CiphertextBlob"]
    assert code(user_kms.decrypt, CiphertextBlob=blob,
                EncryptionContext={"aws:s3:arn": "arn:aws:s3:::via-a/obj"}) == (400, "AccessDeniedException")
    d = srv.aws("kms", "decrypt", "--ciphertext-blob", "fileb:///dev/stdin",
                "--encryption-context", "aws:s3:arn=arn:aws:s3:::via-a/obj", input=blob, check=False,
                env={"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]})
    assert d.returncode != 0 and b"AccessDeniedException" in d.stderr, d.stderr
    # The owner (allowed by the key policy) still decrypts directly.
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"aws:s3:arn": "arn:aws:s3:::via-a/obj"})["Plaintext"] == b"data"
    # An SSE-KMS PUT needs kms:GenerateDataKey, which the key policy does not give the user;
    # nothing is written. A plaintext PUT (s3:PutObject alone) works.
    assert code(user_s3.put_object, Bucket="via-a", Key="new", Body=b"n", ServerSideEncryption="aws:kms",
                SSEKMSKeyId=kid) == (403, "AccessDenied")
    assert not exists(s3, "via-a", "new")
    user_s3.put_object(Bucket="via-a", Key="plain", Body=b"n")


def test_key_policy_is_primary_and_the_managed_s3_key_works_through_s3_only(srv):
    acct = account_id(srv)
    s3, kms = srv.client("s3"), srv.client("kms")
    key = new_user(srv, "kms-admin-ish")
    # An identity policy allowing all of KMS...
    srv.aws("iam", "put-user-policy", "--user-name", "kms-admin-ish", "--policy-name", "all", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["kms:*", "s3:*"], "Resource": "*"}]}))
    user_kms, user_s3 = as_user(srv, "kms", key), as_user(srv, "s3", key)
    # ...counts for a key whose policy delegates to the account (the default policy)...
    delegated = kms.create_key()["KeyMetadata"]["KeyId"]
    user_kms.encrypt(KeyId=delegated, Plaintext=b"x")
    # ...and not for a key whose policy names only the root user without delegation.
    closed = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "kms:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalType": "Account"}}}]}))["KeyMetadata"]["KeyId"]
    assert code(user_kms.encrypt, KeyId=closed, Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(user_kms.describe_key, KeyId=closed) == (400, "AccessDeniedException")
    kms.encrypt(KeyId=closed, Plaintext=b"x")
    # An explicit Deny in the key policy beats the identity policy and the root.
    kms.put_key_policy(KeyId=delegated, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}]}))
    assert code(user_kms.encrypt, KeyId=delegated, Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(kms.encrypt, KeyId=delegated, Plaintext=b"x") == (400, "AccessDeniedException")
    user_kms.generate_data_key(KeyId=delegated, KeySpec="AES_256")

    # alias/aws/s3 is usable through S3 by any principal of the account S3 lets in...
    s3.create_bucket(Bucket="managed-key")
    user_s3.put_object(Bucket="managed-key", Key="k", Body=b"managed", ServerSideEncryption="aws:kms")
    head = user_s3.head_object(Bucket="managed-key", Key="k")
    assert user_s3.get_object(Bucket="managed-key", Key="k")["Body"].read() == b"managed"
    # ...but not directly, even by a user whose IAM policy allows all of KMS.
    assert code(user_kms.encrypt, KeyId=head["SSEKMSKeyId"], Plaintext=b"x") == (400, "AccessDeniedException")
    assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyManager"] == "AWS"


def test_sse_kms_through_s3_is_decided_per_object_context(srv):
    """With bucket keys, the context is the bucket ARN (as on AWS); the cached bucket key
    does not bypass the key policy when it changes."""
    acct = account_id(srv)
    s3, kms = srv.client("s3"), srv.client("kms")
    key = new_user(srv, "bk-reader")
    srv.aws("iam", "put-user-policy", "--user-name", "bk-reader", "--policy-name", "read", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"], "Resource": "*"}]}))
    kid = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="bk-bucket")
    s3.put_object(Bucket="bk-bucket", Key="o", Body=b"bk", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid,
                  BucketKeyEnabled=True)
    user_s3 = as_user(srv, "s3", key)
    assert user_s3.get_object(Bucket="bk-bucket", Key="o")["Body"].read() == b"bk"
    assert user_s3.get_object(Bucket="bk-bucket", Key="o")["Body"].read() == b"bk"
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{acct}:user/bk-reader"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bk-bucket"}}}]}))
    assert code(user_s3.get_object, Bucket="bk-bucket", Key="o") == (403, "AccessDenied")
    assert s3.get_object(Bucket="bk-bucket", Key="o")["Body"].read() == b"bk"


def test_copy_needs_read_on_the_source_too(srv):
    s3 = srv.client("s3")
    for b in ("copy-src", "copy-dst"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="copy-src", Key="a", Body=b"source bytes")
    key = new_user(srv, "copier")
    srv.aws("iam", "put-user-policy", "--user-name", "copier", "--policy-name", "dst", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::copy-dst/*"}]}))
    c = as_user(srv, "s3", key)
    assert code(c.copy_object, Bucket="copy-dst", Key="b", CopySource={"Bucket": "copy-src", "Key": "a"}) == \
        (403, "AccessDenied")
    assert not exists(s3, "copy-dst", "b")
    up = c.create_multipart_upload(Bucket="copy-dst", Key="m")["UploadId"]
    assert code(c.upload_part_copy, Bucket="copy-dst", Key="m", UploadId=up, PartNumber=1,
                CopySource={"Bucket": "copy-src", "Key": "a"}) == (403, "AccessDenied")
    srv.aws("iam", "put-user-policy", "--user-name", "copier", "--policy-name", "src", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::copy-src/*"}]}))
    c.copy_object(Bucket="copy-dst", Key="b", CopySource={"Bucket": "copy-src", "Key": "a"})
    assert s3.get_object(Bucket="copy-dst", Key="b")["Body"].read() == b"source bytes"


def test_secure_transport_and_request_alias_reach_the_policies(srv):
    from conftest import tls_server

    def deny_unless_secure(bucket, secure):
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": secure}}}]})

    # Plain HTTP: "deny unless TLS" denies.
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=deny_unless_secure("tls-only", "false"))
    assert code(s3.put_object, Bucket="tls-only", Key="k", Body=b"x") == (403, "AccessDenied")
    with tls_server("coffer-policies-tls-") as t:
        ts3 = t.client("s3")
        ts3.create_bucket(Bucket="tls-only")
        ts3.put_bucket_policy(Bucket="tls-only", Policy=deny_unless_secure("tls-only", "false"))
        ts3.put_object(Bucket="tls-only", Key="k", Body=b"x")
        ts3.put_bucket_policy(Bucket="tls-only", Policy=deny_unless_secure("tls-only", "true"))
        assert code(ts3.put_object, Bucket="tls-only", Key="k", Body=b"x") == (403, "AccessDenied")

    # kms:RequestAlias: a key usable only when named by one alias.
    acct = account_id(srv)
    kms = srv.client("kms")
    key = new_user(srv, "alias-user")
    srv.aws("iam", "put-user-policy", "--user-name", "alias-user", "--policy-name", "kms", "--policy-document",
            json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
                 "Condition": {"StringEquals": {"kms:RequestAlias": "alias/app-key"}}}]}))
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app-key", TargetKeyId=kid)
    kms.create_alias(AliasName="alias/other-name", TargetKeyId=kid)
    u = as_user(srv, "kms", key)
    u.encrypt(KeyId="alias/app-key", Plaintext=b"x")
    u.encrypt(KeyId=f"arn:aws:kms:us-east-1:{acct}:alias/app-key", Plaintext=b"x")
    assert code(u.encrypt, KeyId="alias/other-name", Plaintext=b"x") == (400, "AccessDeniedException")
    assert code(u.encrypt, KeyId=kid, Plaintext=b"x") == (400, "AccessDeniedException")


def test_a_missing_bucket_is_no_such_bucket_to_any_signed_caller(srv):
    """AWS answers NoSuchBucket for a bucket that does not exist before any decision that
    needs the bucket: a user allowed nothing sees 404 there, and 403 on a bucket that
    exists."""
    srv.client("s3").create_bucket(Bucket="exists-for-sure")
    nobody = as_user(srv, "s3", new_user(srv, "nothing-allowed"))
    assert code(nobody.get_object, Bucket="no-such-bucket-here", Key="k") == (404, "NoSuchBucket")
    assert code(nobody.list_objects_v2, Bucket="no-such-bucket-here") == (404, "NoSuchBucket")
    assert code(nobody.put_object, Bucket="no-such-bucket-here", Key="k", Body=b"x") == (404, "NoSuchBucket")
    assert code(nobody.get_object, Bucket="exists-for-sure", Key="k") == (403, "AccessDenied")
    # CreateBucket is not about an existing bucket: the user's missing permission decides.
    assert code(nobody.create_bucket, Bucket="no-such-bucket-here") == (403, "AccessDenied")
