"""Object Ownership and ACLs with boto3 and the aws CLI: new buckets enforce the bucket
owner's ownership (ACLs disabled: AccessControlListNotSupported for any ACL but
bucket-owner-full-control, ACL reads show the owner's full control); a bucket created with
ACLs enabled keeps bucket and object ACLs (canned, grant headers, XML bodies) checked as S3
checks them; public ACL grants let anonymous callers in exactly as far as they go, unless
Block Public Access blocks or ignores them; an explicit deny in the bucket policy still wins."""

import json
import subprocess
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REGION

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def unsigned(server):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


def owner_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def test_new_buckets_enforce_the_owner_s_ownership(shared_server):
    s3 = shared_server.client()
    b = f"own-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    me = owner_id(s3)
    rules = s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    acl = s3.get_bucket_acl(Bucket=b)
    assert acl["Owner"]["ID"] == me
    assert acl["Grants"] == [{"Grantee": {"ID": me, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
    # ACLs are disabled: any ACL but the owner's full control is refused, and changes nothing.
    nope = (400, "AccessControlListNotSupported", "The bucket does not allow ACLs")
    assert err(s3.put_bucket_acl, Bucket=b, ACL="public-read") == nope
    assert err(s3.put_bucket_acl, Bucket=b, ACL="private") == nope
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ACL="public-read") == nope
    assert err(s3.put_object, Bucket=b, Key="k", Body=b"x", ACL="private") == nope
    assert err(s3.create_multipart_upload, Bucket=b, Key="k", ACL="authenticated-read") == nope
    with pytest.raises(ClientError):
        s3.head_object(Bucket=b, Key="k")
    s3.put_object(Bucket=b, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    assert err(s3.put_object_acl, Bucket=b, Key="k", ACL="public-read") == nope
    acl = s3.get_object_acl(Bucket=b, Key="k")
    assert acl["Grants"] == [{"Grantee": {"ID": me, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
    assert err(s3.copy_object, Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "k"}, ACL="public-read") == nope
    # Validation comes first, as on AWS.
    assert err(s3.put_bucket_acl, Bucket=b, ACL="public-read", GrantRead=f'id="{me}"')[:2] == (400, "InvalidRequest")
    assert err(s3.put_bucket_acl, Bucket=b, GrantRead='id="wrong-id"')[:3] == (400, "InvalidArgument", "Invalid id")
    assert err(s3.put_bucket_acl, Bucket=b, GrantRead='uri="http://acs.amazonaws.com/groups/s3/FakeGroup"')[:3] == \
        (400, "InvalidArgument", "Invalid group uri")
    # A bucket created with a public ACL under enforced ownership is refused, not created.
    assert err(s3.create_bucket, Bucket=f"{b}-pub", ACL="public-read")[:2] == (400, "InvalidBucketAclWithObjectOwnership")
    assert err(s3.head_bucket, Bucket=f"{b}-pub")[0] == 404
    # Ownership controls: bad values are malformed, and they can be changed and removed.
    bad = {"Rules": [{"ObjectOwnership": "RandomValue"}]}
    assert err(s3.put_bucket_ownership_controls, Bucket=b, OwnershipControls=bad)[:2] == (400, "MalformedXML")
    s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    r = s3.delete_bucket_ownership_controls(Bucket=b)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err(s3.get_bucket_ownership_controls, Bucket=b) == \
        (404, "OwnershipControlsNotFoundError", "The bucket ownership controls were not found")
    assert err(s3.create_bucket, Bucket=f"{b}-x", ObjectOwnership="RandomValue")[:3] == \
        (400, "InvalidArgument", "Invalid x-amz-object-ownership header: RandomValue")


def test_acls_of_a_bucket_with_acls_enabled(shared_server):
    s3, anon = shared_server.client(), unsigned(shared_server)
    me = owner_id(s3)
    b = f"acl-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b, ObjectOwnership="ObjectWriter")
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"shared by ACL")
    assert err(anon.get_object, Bucket=b, Key="doc.txt")[:2] == (403, "AccessDenied")
    # Block Public Access (on for new buckets) refuses public ACLs...
    assert err(s3.put_object_acl, Bucket=b, Key="doc.txt", ACL="public-read")[:2] == (403, "AccessDenied")
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_object_acl(Bucket=b, Key="doc.txt", ACL="public-read")
    got = s3.get_object_acl(Bucket=b, Key="doc.txt")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in got
    # ...and, with IgnorePublicAcls, they grant nothing.
    assert err(anon.get_object, Bucket=b, Key="doc.txt")[:2] == (403, "AccessDenied")
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    assert anon.get_object(Bucket=b, Key="doc.txt")["Body"].read() == b"shared by ACL"
    url = f"{shared_server.endpoint}/{b}/doc.txt"
    assert subprocess.run(["curl", "-s", url], capture_output=True, text=True).stdout == "shared by ACL"
    # Only what the grant says: no listing, no writing, not other objects.
    s3.put_object(Bucket=b, Key="other.txt", Body=b"private")
    assert err(anon.get_object, Bucket=b, Key="other.txt")[:2] == (403, "AccessDenied")
    assert err(anon.list_objects_v2, Bucket=b)[:2] == (403, "AccessDenied")
    assert err(anon.put_object, Bucket=b, Key="new", Body=b"x")[:2] == (403, "AccessDenied")
    # The bucket's ACL: READ lets everyone list, WRITE lets everyone write.
    s3.put_bucket_acl(Bucket=b, ACL="public-read-write")
    keys = [o["Key"] for o in anon.list_objects_v2(Bucket=b)["Contents"]]
    assert keys == ["doc.txt", "other.txt"]
    anon.put_object(Bucket=b, Key="dropped", Body=b"by anyone")
    assert s3.get_object(Bucket=b, Key="dropped")["Body"].read() == b"by anyone"
    # An explicit deny in the bucket policy wins over any grant.
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/doc.txt"}]}))
    assert err(anon.get_object, Bucket=b, Key="doc.txt")[:2] == (403, "AccessDenied")
    s3.delete_bucket_policy(Bucket=b)
    # A new version starts private; a copy does not inherit its source's ACL.
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"v2")
    assert err(anon.get_object, Bucket=b, Key="doc.txt")[:2] == (403, "AccessDenied")
    s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "dropped"})
    assert len(s3.get_object_acl(Bucket=b, Key="copy")["Grants"]) == 1
    # ACLs set with writes: canned, and grant headers naming an account by canonical id.
    s3.put_object(Bucket=b, Key="readable", Body=b"r", ACL="public-read")
    assert anon.get_object(Bucket=b, Key="readable")["Body"].read() == b"r"
    s3.put_object(Bucket=b, Key="granted", Body=b"g", GrantRead=f'id="{me}"')
    assert s3.get_object_acl(Bucket=b, Key="granted")["Grants"] == [
        {"Grantee": {"ID": me, "Type": "CanonicalUser"}, "Permission": "READ"}]
    # An XML body, and its checks.
    policy = {"Owner": {"ID": me}, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": me}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]}
    s3.put_object_acl(Bucket=b, Key="other.txt", AccessControlPolicy=policy)
    assert anon.get_object(Bucket=b, Key="other.txt")["Body"].read() == b"private"
    bad = {"Owner": {"ID": "nobody"}, "Grants": []}
    assert err(s3.put_object_acl, Bucket=b, Key="other.txt", AccessControlPolicy=bad)[:3] == \
        (400, "InvalidArgument", "Invalid id")
    assert err(s3.put_object_acl, Bucket=b, Key="other.txt", ACL="private", AccessControlPolicy=policy)[:2] == \
        (400, "UnexpectedContent")
    assert err(s3.put_object_acl, Bucket=b, Key="other.txt")[:2] == (400, "MissingSecurityHeader")
    assert err(s3.put_object_acl, Bucket=b, Key="missing", ACL="private")[:2] == (404, "NoSuchKey")
    # Turning ownership enforcement on while the bucket's ACL grants others is refused.
    assert err(s3.put_bucket_ownership_controls, Bucket=b,
               OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})[:2] == \
        (400, "InvalidBucketAclWithObjectOwnership")
    s3.put_bucket_acl(Bucket=b, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    # Enforced again: object ACLs no longer count.
    assert err(anon.get_object, Bucket=b, Key="readable")[:2] == (403, "AccessDenied")


def test_acls_with_the_aws_cli(shared_server):
    b = f"acl-cli-{uuid.uuid4().hex[:8]}"
    shared_server.aws("s3api", "create-bucket", "--bucket", b, "--object-ownership", "BucketOwnerPreferred")
    got = shared_server.aws("s3api", "get-bucket-ownership-controls", "--bucket", b, expect_json=True)
    assert got["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    shared_server.aws("s3api", "put-bucket-acl", "--bucket", b, "--acl", "log-delivery-write")
    acl = shared_server.aws("s3api", "get-bucket-acl", "--bucket", b, expect_json=True)
    uris = {(g["Grantee"].get("URI"), g["Permission"]) for g in acl["Grants"]}
    assert ("http://acs.amazonaws.com/groups/s3/LogDelivery", "WRITE") in uris
    assert ("http://acs.amazonaws.com/groups/s3/LogDelivery", "READ_ACP") in uris
    p = shared_server.aws("s3api", "put-bucket-acl", "--bucket", b, "--acl", "fake-acl", check=False)
    assert p.returncode != 0 and "InvalidArgument" in p.stderr


def test_acl_operations_need_their_permissions(shared_server):
    s3, iam = shared_server.client(), shared_server.client("iam")
    b = f"acl-perm-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    user = f"a{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
            "s3:GetBucketAcl", "s3:GetBucketOwnershipControls"], "Resource": f"arn:aws:s3:::{b}"}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    u = shared_server.client(access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert u.get_bucket_acl(Bucket=b)["Owner"]["ID"] == owner_id(s3)
    assert u.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]
    assert err(u.get_object_acl, Bucket=b, Key="k")[:2] == (403, "AccessDenied")
    assert err(u.put_bucket_ownership_controls, Bucket=b,
               OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})[:2] == (403, "AccessDenied")
    assert err(u.put_bucket_acl, Bucket=b, ACL="private")[:2] == (403, "AccessDenied")


def test_writers_from_other_accounts_own_their_objects_where_acls_are_enabled(tmp_path):
    """ObjectWriter: a writer from another account owns what it writes (listings and ACLs
    name it); BucketOwnerPreferred hands ownership to the bucket owner when the writer
    grants bucket-owner-full-control; BucketOwnerEnforced always keeps it."""
    from conftest import Server
    from test_tenants import Tenant

    srv = Server(tmp_path).start()
    try:
        a, b = Tenant(srv, "acl-owner-a"), Tenant(srv, "acl-writer-b")
        a_s3, b_s3 = a.client("s3"), b.client("s3")
        a_id, b_id = owner_id(a_s3), owner_id(b_s3)
        for ownership in ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"):
            bucket = f"own-{ownership.lower()}-{uuid.uuid4().hex[:6]}"
            a_s3.create_bucket(Bucket=bucket, ObjectOwnership=ownership)
            a_s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{b.id}:root"},
                 "Action": ["s3:PutObject", "s3:GetObjectAcl", "s3:PutObjectAcl"],
                 "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
            b_s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
            b_s3.put_object(Bucket=bucket, Key="granted", Body=b"x", ACL="bucket-owner-full-control")
            a_s3.put_object(Bucket=bucket, Key="own", Body=b"x")
            owners = {o["Key"]: o["Owner"]["ID"]
                      for o in a_s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]}
            expected = {
                "ObjectWriter": {"plain": b_id, "granted": b_id, "own": a_id},
                "BucketOwnerPreferred": {"plain": b_id, "granted": a_id, "own": a_id},
                "BucketOwnerEnforced": {"plain": a_id, "granted": a_id, "own": a_id},
            }[ownership]
            assert owners == expected, ownership
            versions = {v["Key"]: v["Owner"]["ID"] for v in a_s3.list_object_versions(Bucket=bucket)["Versions"]}
            assert versions == expected, ownership
            assert b_s3.get_object_acl(Bucket=bucket, Key="plain")["Owner"]["ID"] == expected["plain"], ownership
            if ownership == "ObjectWriter":
                # Its owner's canned ACL is expanded for it, not for the bucket's owner.
                b_s3.put_object_acl(Bucket=bucket, Key="plain", ACL="private")
                acl = b_s3.get_object_acl(Bucket=bucket, Key="plain")
                assert acl["Owner"]["ID"] == b_id
                assert acl["Grants"] == [{"Grantee": {"ID": b_id, "Type": "CanonicalUser"},
                                          "Permission": "FULL_CONTROL"}]
    finally:
        srv.stop()


def test_acl_grants_never_stand_in_for_versions_headers_or_denies(shared_server):
    """An ACL grant is one more way to be allowed for the operation's own action only: not
    for a named version's action or what headers ask besides, and never over an explicit
    deny — kept even where RestrictPublicBuckets sets a public policy's grants aside."""
    s3, anon = shared_server.client(), unsigned(shared_server)
    b = f"acl-limits-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b, ObjectOwnership="ObjectWriter")
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_acl(Bucket=b, ACL="public-read-write")
    v = s3.put_object(Bucket=b, Key="doc", Body=b"v1")["VersionId"]
    # WRITE lets everyone write and delete, but not remove a version for good.
    assert err(anon.delete_object, Bucket=b, Key="doc", VersionId=v)[:2] == (403, "AccessDenied")
    assert s3.get_object(Bucket=b, Key="doc", VersionId=v)["Body"].read() == b"v1"
    # A public policy set aside by RestrictPublicBuckets still denies what it denies.
    s3.put_object(Bucket=b, Key="secret/x", Body=b"s", ACL="public-read")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/open/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/secret/*"}]}))
    assert err(anon.get_object, Bucket=b, Key="secret/x")[:2] == (403, "AccessDenied")
    s3.delete_bucket_policy(Bucket=b)
    assert anon.get_object(Bucket=b, Key="secret/x")["Body"].read() == b"s", "the ACL alone does allow it"


def test_create_bucket_with_an_acl_needs_its_permissions_and_leaves_existing_buckets_alone(shared_server):
    s3, iam = shared_server.client(), shared_server.client("iam")
    user = f"c{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="create", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:CreateBucket", "Resource": "*"}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    u = shared_server.client(access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    b = f"acl-create-{uuid.uuid4().hex[:8]}"
    assert err(u.create_bucket, Bucket=b, ObjectOwnership="ObjectWriter")[:2] == (403, "AccessDenied")
    assert err(u.create_bucket, Bucket=b, GrantRead=f'id="{owner_id(s3)}"')[:2] == (403, "AccessDenied")
    u.create_bucket(Bucket=b)
    # Creating it again (us-east-1's legacy answer) does not touch its ACL.
    logs = 'uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'
    s3.create_bucket(Bucket=f"{b}-w", ObjectOwnership="ObjectWriter")
    s3.create_bucket(Bucket=f"{b}-w", GrantWrite=logs, ObjectOwnership="ObjectWriter")
    assert len(s3.get_bucket_acl(Bucket=f"{b}-w")["Grants"]) == 1
    # A new bucket gets the ACL it is created with.
    s3.create_bucket(Bucket=f"{b}-n", GrantWrite=logs, ObjectOwnership="ObjectWriter")
    grants = s3.get_bucket_acl(Bucket=f"{b}-n")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"},
            "Permission": "WRITE"} in grants
