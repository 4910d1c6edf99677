"""IAM users, access keys and inline user policies through the stock aws CLI and boto3,
and what they mean for S3 and the KMS: a new user is denied everything; a user policy
allowing one bucket works for that bucket only; an explicit Deny wins; secrets are never
stored in the clear; identities survive a restart; inactive keys stop authenticating."""

import json
import os
import tempfile

import pytest
from botocore.exceptions import ClientError

from conftest import Server


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-iam-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def code(call, *args, **kw):
    with pytest.raises(ClientError) as ei:
        call(*args, **kw)
    r = ei.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def new_user(srv, name):
    """Creates a user and an access key with the CLI; returns (key id, secret)."""
    u = srv.aws("iam", "create-user", "--user-name", name, expect_json=True)["User"]
    assert u["UserName"] == name and u["Arn"].endswith(f":user/{name}"), u
    k = srv.aws("iam", "create-access-key", "--user-name", name, expect_json=True)["AccessKey"]
    assert k["Status"] == "Active" and len(k["SecretAccessKey"]) == 40, k
    return k["AccessKeyId"], k["SecretAccessKey"]


def as_user(srv, service, key):
    return srv.client(service, access_key=key[0], secret_key=key[1])


def one_bucket_policy(bucket):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
            ],
        }
    )


def test_a_new_user_is_denied_everything_but_who_am_i(srv):
    root_s3 = srv.client("s3")
    root_s3.create_bucket(Bucket="root-owned")
    root_s3.put_object(Bucket="root-owned", Key="k", Body=b"secret data")
    key = new_user(srv, "nobody")
    s3, kms, iam = (as_user(srv, s, key) for s in ("s3", "kms", "iam"))
    me = as_user(srv, "sts", key).get_caller_identity()
    assert me["Arn"].endswith(":user/nobody") and me["Account"] == me["Arn"].split(":")[4], me

    assert code(s3.list_buckets) == (403, "AccessDenied")
    assert code(s3.get_object, Bucket="root-owned", Key="k") == (403, "AccessDenied")
    assert code(s3.put_object, Bucket="root-owned", Key="x", Body=b"x") == (403, "AccessDenied")
    assert code(s3.create_bucket, Bucket="nobodys-bucket") == (403, "AccessDenied")
    assert code(s3.list_objects_v2, Bucket="root-owned") == (403, "AccessDenied")
    assert code(kms.create_key) == (400, "AccessDeniedException")
    assert code(kms.list_keys) == (400, "AccessDeniedException")
    assert code(iam.list_users) == (403, "AccessDenied")
    assert code(iam.create_user, UserName="escalate") == (403, "AccessDenied")
    # Nothing was written.
    assert code(root_s3.head_object, Bucket="root-owned", Key="x")[0] == 404
    assert "escalate" not in [u["UserName"] for u in srv.client("iam").list_users()["Users"]]
    # The aws CLI agrees.
    p = srv.aws("s3", "ls", env={"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]}, check=False)
    assert p.returncode != 0 and "AccessDenied" in p.stderr, p.stderr


def test_a_user_policy_for_one_bucket_works_for_that_bucket_only(srv):
    root_s3 = srv.client("s3")
    for b in ["allowed-bkt", "other-bkt"]:
        root_s3.create_bucket(Bucket=b)
        root_s3.put_object(Bucket=b, Key="seed", Body=b"seed of " + b.encode())
    key = new_user(srv, "alice")
    srv.aws(
        "iam", "put-user-policy", "--user-name", "alice", "--policy-name", "one-bucket",
        "--policy-document", one_bucket_policy("allowed-bkt"),
    )
    got = srv.aws("iam", "get-user-policy", "--user-name", "alice", "--policy-name", "one-bucket", expect_json=True)
    assert got["PolicyDocument"] == json.loads(one_bucket_policy("allowed-bkt")), got
    s3 = as_user(srv, "s3", key)

    s3.put_object(Bucket="allowed-bkt", Key="mine", Body=b"alice was here")
    assert s3.get_object(Bucket="allowed-bkt", Key="mine")["Body"].read() == b"alice was here"
    assert s3.get_object(Bucket="allowed-bkt", Key="seed")["Body"].read() == b"seed of allowed-bkt"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="allowed-bkt")["Contents"]] == ["mine", "seed"]
    s3.delete_object(Bucket="allowed-bkt", Key="mine")

    assert code(s3.get_object, Bucket="other-bkt", Key="seed") == (403, "AccessDenied")
    assert code(s3.put_object, Bucket="other-bkt", Key="mine", Body=b"x") == (403, "AccessDenied")
    assert code(s3.list_objects_v2, Bucket="other-bkt") == (403, "AccessDenied")
    assert code(s3.list_buckets) == (403, "AccessDenied")  # s3:ListAllMyBuckets is not granted

    # An explicit Deny beats the Allow.
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::allowed-bkt/seed"}],
    }
    srv.client("iam").put_user_policy(UserName="alice", PolicyName="deny-seed", PolicyDocument=json.dumps(deny))
    assert code(s3.get_object, Bucket="allowed-bkt", Key="seed") == (403, "AccessDenied")
    s3.put_object(Bucket="allowed-bkt", Key="still", Body=b"ok")
    assert sorted(srv.client("iam").list_user_policies(UserName="alice")["PolicyNames"]) == ["deny-seed", "one-bucket"]
    srv.client("iam").delete_user_policy(UserName="alice", PolicyName="deny-seed")
    assert s3.get_object(Bucket="allowed-bkt", Key="seed")["Body"].read() == b"seed of allowed-bkt"


def test_policy_variables_and_kms_through_identity_policies(srv):
    key = new_user(srv, "carol")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"], "Resource": "arn:aws:iam::*:user/${aws:username}"},
            {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"},
        ],
    }
    srv.client("iam").put_user_policy(UserName="carol", PolicyName="self", PolicyDocument=json.dumps(policy))
    iam, kms = as_user(srv, "iam", key), as_user(srv, "kms", key)
    assert iam.get_user()["User"]["UserName"] == "carol"
    assert [k["AccessKeyId"] for k in iam.list_access_keys()["AccessKeyMetadata"]] == [key[0]]
    assert code(iam.get_user, UserName="alice") == (403, "AccessDenied")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"for carol")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for carol"
    assert code(kms.disable_key, KeyId=kid) == (400, "AccessDeniedException")


def test_malformed_policies_and_bad_requests_change_nothing(srv):
    iam = srv.client("iam")
    iam.create_user(UserName="dave")
    for bad in ["not json", json.dumps({"Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}),
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})]:
        assert code(iam.put_user_policy, UserName="dave", PolicyName="p", PolicyDocument=bad) == (400, "MalformedPolicyDocument")
    assert iam.list_user_policies(UserName="dave")["PolicyNames"] == []
    assert code(iam.get_user, UserName="nobody-here") == (404, "NoSuchEntity")
    assert code(iam.create_user, UserName="dave") == (409, "EntityAlreadyExists")
    assert code(iam.create_user, UserName="bad name!") == (400, "ValidationError")
    iam.create_access_key(UserName="dave")
    iam.create_access_key(UserName="dave")
    assert code(iam.create_access_key, UserName="dave") == (409, "LimitExceeded")
    assert code(iam.delete_user, UserName="dave") == (409, "DeleteConflict")
    assert "dave" in [u["UserName"] for u in iam.list_users()["Users"]]


def test_secrets_are_wrapped_at_rest_survive_restart_and_inactive_keys_stop(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    s = Server(d).start()
    try:
        s.client("s3").create_bucket(Bucket="eve-bkt")
        key = new_user(s, "eve")
        s.client("iam").put_user_policy(UserName="eve", PolicyName="p", PolicyDocument=one_bucket_policy("eve-bkt"))
        as_user(s, "s3", key).put_object(Bucket="eve-bkt", Key="k", Body=b"v")
    finally:
        s.stop()
    assert s.stored_with(key[1].encode()) == [], "the secret access key is stored only wrapped"
    s = Server(d).start()
    try:
        s3 = as_user(s, "s3", key)
        assert s3.get_object(Bucket="eve-bkt", Key="k")["Body"].read() == b"v"
        iam = s.client("iam")
        iam.update_access_key(UserName="eve", AccessKeyId=key[0], Status="Inactive")
        assert code(s3.get_object, Bucket="eve-bkt", Key="k") == (403, "InvalidAccessKeyId")
        iam.update_access_key(UserName="eve", AccessKeyId=key[0], Status="Active")
        assert s3.get_object(Bucket="eve-bkt", Key="k")["Body"].read() == b"v"
        iam.delete_access_key(UserName="eve", AccessKeyId=key[0])
        assert code(s3.get_object, Bucket="eve-bkt", Key="k") == (403, "InvalidAccessKeyId")
        iam.delete_user_policy(UserName="eve", PolicyName="p")
        iam.delete_user(UserName="eve")
        assert code(iam.get_user, UserName="eve") == (404, "NoSuchEntity")
    finally:
        s.stop()
