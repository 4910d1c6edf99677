"""Managed policies, groups, roles with STS AssumeRole, and the policy simulator, through
the stock aws CLI and boto3; each one's effect on real S3 and KMS requests."""

import json
import tempfile

import pytest

from conftest import Server
from test_iam import as_user, code, new_user


@pytest.fixture(scope="module")
def srv():
    with tempfile.TemporaryDirectory(prefix="coffer-iam-entities-") as d:
        s = Server(d).start()
        yield s
        s.stop()


def allow(actions, resources):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": resources}]})


def test_managed_policies_attach_version_and_detach(srv):
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="managed-b")
    s3.put_object(Bucket="managed-b", Key="k", Body=b"v")
    key = new_user(srv, "carol")
    carol = as_user(srv, "s3", key)
    iam = srv.client("iam")
    p = srv.aws("iam", "create-policy", "--policy-name", "read-managed-b", "--policy-document",
                allow("s3:GetObject", "arn:aws:s3:::managed-b/*"), expect_json=True)["Policy"]
    arn = p["Arn"]
    assert arn.endswith(":policy/read-managed-b") and p["DefaultVersionId"] == "v1", p
    assert code(carol.get_object, Bucket="managed-b", Key="k") == (403, "AccessDenied")
    srv.aws("iam", "attach-user-policy", "--user-name", "carol", "--policy-arn", arn)
    assert carol.get_object(Bucket="managed-b", Key="k")["Body"].read() == b"v"
    assert iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == [
        {"PolicyName": "read-managed-b", "PolicyArn": arn}]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    doc = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Action"] == "s3:GetObject", doc
    assert "read-managed-b" in [x["PolicyName"] for x in iam.list_policies(Scope="Local")["Policies"]]
    # Attached policies block deletion (of the policy and of the user).
    assert code(iam.delete_policy, PolicyArn=arn) == (409, "DeleteConflict")
    assert code(iam.delete_user, UserName="carol")[1] == "DeleteConflict"
    # A new default version changes what the user may do.
    iam.create_policy_version(PolicyArn=arn, SetAsDefault=True,
                              PolicyDocument=allow("s3:PutObject", "arn:aws:s3:::managed-b/*"))
    assert code(carol.get_object, Bucket="managed-b", Key="k") == (403, "AccessDenied")
    carol.put_object(Bucket="managed-b", Key="by-carol", Body=b"c")
    iam.detach_user_policy(UserName="carol", PolicyArn=arn)
    assert code(carol.put_object, Bucket="managed-b", Key="x", Body=b"x") == (403, "AccessDenied")
    iam.delete_policy(PolicyArn=arn)
    assert code(iam.get_policy, PolicyArn=arn) == (404, "NoSuchEntity")
    # AWS managed policies are built in.
    ro = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    assert iam.get_policy(PolicyArn=ro)["Policy"]["PolicyName"] == "AmazonS3ReadOnlyAccess"
    iam.attach_user_policy(UserName="carol", PolicyArn=ro)
    assert carol.get_object(Bucket="managed-b", Key="k")["Body"].read() == b"v"
    assert code(carol.delete_object, Bucket="managed-b", Key="k") == (403, "AccessDenied")
    # Malformed documents are refused.
    assert code(iam.create_policy, PolicyName="bad", PolicyDocument="{nope") == (400, "MalformedPolicyDocument")


def test_groups_grant_their_members(srv):
    s3 = srv.client("s3")
    s3.create_bucket(Bucket="group-b")
    key = new_user(srv, "dave")
    dave = as_user(srv, "s3", key)
    iam = srv.client("iam")
    srv.aws("iam", "create-group", "--group-name", "readers")
    srv.aws("iam", "put-group-policy", "--group-name", "readers", "--policy-name", "list",
            "--policy-document", allow("s3:ListBucket", "arn:aws:s3:::group-b"))
    assert code(dave.list_objects_v2, Bucket="group-b") == (403, "AccessDenied")
    assert iam.list_group_policies(GroupName="readers")["PolicyNames"] == ["list"]
    got = iam.get_group_policy(GroupName="readers", PolicyName="list")
    assert got["GroupName"] == "readers" and got["PolicyDocument"]["Statement"][0]["Action"] == "s3:ListBucket", got
    assert code(iam.get_group_policy, GroupName="readers", PolicyName="nope") == (404, "NoSuchEntity")
    srv.aws("iam", "add-user-to-group", "--group-name", "readers", "--user-name", "dave")
    dave.list_objects_v2(Bucket="group-b")
    g = iam.get_group(GroupName="readers")
    assert [u["UserName"] for u in g["Users"]] == ["dave"], g
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName="dave")["Groups"]] == ["readers"]
    # A managed policy attached to the group counts too.
    iam.attach_group_policy(GroupName="readers", PolicyArn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    dave.put_object(Bucket="group-b", Key="k", Body=b"x")
    assert code(iam.delete_group, GroupName="readers") == (409, "DeleteConflict")
    iam.remove_user_from_group(GroupName="readers", UserName="dave")
    assert code(dave.list_objects_v2, Bucket="group-b") == (403, "AccessDenied")


def trust(principal):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})


def test_assume_role_gives_temporary_credentials_honoured_by_s3_and_kms(srv):
    acct = srv.client("sts").get_caller_identity()["Account"]
    s3, kms = srv.client("s3"), srv.client("kms")
    s3.create_bucket(Bucket="role-b")
    s3.put_object(Bucket="role-b", Key="k", Body=b"for the role")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    erin, frank = new_user(srv, "erin"), new_user(srv, "frank")
    role = srv.aws("iam", "create-role", "--role-name", "reader", "--assume-role-policy-document",
                   trust(f"arn:aws:iam::{acct}:user/erin"), expect_json=True)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{acct}:role/reader", role
    srv.aws("iam", "put-role-policy", "--role-name", "reader", "--policy-name", "p", "--policy-document",
            allow(["s3:GetObject", "kms:Encrypt", "kms:Decrypt"], ["arn:aws:s3:::role-b/*", "*"]))
    iam = srv.client("iam")
    assert iam.list_role_policies(RoleName="reader")["PolicyNames"] == ["p"]
    assert iam.get_role_policy(RoleName="reader", PolicyName="p")["RoleName"] == "reader"
    # erin is named by the trust policy (no identity policy needed in the same account);
    # frank is not.
    assert code(as_user(srv, "sts", frank).assume_role, RoleArn=role["Arn"],
                RoleSessionName="s1") == (403, "AccessDenied")
    out = srv.aws("sts", "assume-role", "--role-arn", role["Arn"], "--role-session-name", "erin-session",
                  env={"AWS_ACCESS_KEY_ID": erin[0], "AWS_SECRET_ACCESS_KEY": erin[1]}, expect_json=True)
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA") and c["SessionToken"], out
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{acct}:assumed-role/reader/erin-session"

    def session(service, token=c["SessionToken"]):
        import boto3
        import botocore.config
        return boto3.client(service, endpoint_url=srv.endpoint, region_name="us-east-1",
                            aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=token,
                            config=botocore.config.Config(retries={"max_attempts": 1},
                                                          s3={"addressing_style": "path"}))

    me = session("sts").get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{acct}:assumed-role/reader/erin-session", me
    assert session("s3").get_object(Bucket="role-b", Key="k")["Body"].read() == b"for the role"
    assert code(session("s3").put_object, Bucket="role-b", Key="x", Body=b"x") == (403, "AccessDenied")
    blob = session("kms").encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
    # The session token is required, and must be the right one.
    assert code(session("s3", token=None).get_object, Bucket="role-b", Key="k") == (400, "InvalidToken")
    assert code(session("s3", token="x" * 192).get_object, Bucket="role-b", Key="k") == (400, "InvalidToken")
    assert code(session("kms", token=None).encrypt, KeyId=key_id, Plaintext=b"p")[1] == "UnrecognizedClientException"
    # The aws CLI works with the three environment variables.
    p = srv.aws("s3", "cp", "s3://role-b/k", "-", env={
        "AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
        "AWS_SESSION_TOKEN": c["SessionToken"]})
    assert p.stdout == "for the role"
    # Sessions survive a restart; deleting the role ends them.
    srv.stop()
    srv.start()
    assert session("s3").get_object(Bucket="role-b", Key="k")["Body"].read() == b"for the role"
    iam = srv.client("iam")
    assert code(iam.delete_role, RoleName="reader") == (409, "DeleteConflict")
    iam.delete_role_policy(RoleName="reader", PolicyName="p")
    iam.delete_role(RoleName="reader")
    assert code(session("s3").get_object, Bucket="role-b", Key="k") == (403, "InvalidAccessKeyId")
    # sts:ExternalId reaches the trust policy's conditions.
    iam.create_role(RoleName="with-external-id", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:user/erin"},
                                                "Action": "sts:AssumeRole",
                                                "Condition": {"StringEquals": {"sts:ExternalId": "shared-secret-id"}}}]}))
    erin_sts = as_user(srv, "sts", erin)
    xarn = f"arn:aws:iam::{acct}:role/with-external-id"
    assert code(erin_sts.assume_role, RoleArn=xarn, RoleSessionName="x1") == (403, "AccessDenied")
    assert code(erin_sts.assume_role, RoleArn=xarn, RoleSessionName="x1", ExternalId="wrong-id-1") == (403, "AccessDenied")
    erin_sts.assume_role(RoleArn=xarn, RoleSessionName="x1", ExternalId="shared-secret-id")
    # Too long a session is refused.
    iam.create_role(RoleName="short", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{acct}:root"))
    assert code(srv.client("sts").assume_role, RoleArn=f"arn:aws:iam::{acct}:role/short",
                RoleSessionName="s1", DurationSeconds=7200) == (400, "ValidationError")


def test_simulate_principal_policy_matches_real_decisions(srv):
    iam = srv.client("iam")
    acct = srv.client("sts").get_caller_identity()["Account"]
    gina_key = new_user(srv, "gina")
    iam.put_user_policy(UserName="gina", PolicyName="mixed", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::sim-b/*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}))
    out = srv.aws("iam", "simulate-principal-policy", "--policy-source-arn", f"arn:aws:iam::{acct}:user/gina",
                  "--action-names", "s3:GetObject", "s3:DeleteObject",
                  "--resource-arns", "arn:aws:s3:::sim-b/k", "arn:aws:s3:::other-b/k", expect_json=True)
    got = {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in out["EvaluationResults"]}
    assert got == {("s3:GetObject", "arn:aws:s3:::sim-b/k"): "allowed",
                   ("s3:GetObject", "arn:aws:s3:::other-b/k"): "implicitDeny",
                   ("s3:DeleteObject", "arn:aws:s3:::sim-b/k"): "explicitDeny",
                   ("s3:DeleteObject", "arn:aws:s3:::other-b/k"): "explicitDeny"}, got
    # The simulator agrees with what S3 does for the same user.
    s3 = srv.client("s3")
    for b in ("sim-b", "other-b"):
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="k", Body=b"x")
    gina = as_user(srv, "s3", gina_key)
    assert gina.get_object(Bucket="sim-b", Key="k")["Body"].read() == b"x"
    assert code(gina.get_object, Bucket="other-b", Key="k") == (403, "AccessDenied")
    assert code(gina.delete_object, Bucket="sim-b", Key="k") == (403, "AccessDenied")
    # Context entries feed conditions.
    r = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]})],
        ActionNames=["s3:PutObject"], ResourceArns=["arn:aws:s3:::any/k"],
        ContextEntries=[{"ContextKeyName": "s3:x-amz-server-side-encryption", "ContextKeyValues": ["aws:kms"],
                         "ContextKeyType": "string"}])
    assert r["EvaluationResults"][0]["EvalDecision"] == "allowed", r
    assert code(iam.simulate_principal_policy, PolicySourceArn=f"arn:aws:iam::{acct}:user/nobody-here",
                ActionNames=["s3:GetObject"]) == (404, "NoSuchEntity")
