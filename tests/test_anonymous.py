"""Anonymous (unsigned) requests: evaluated, not refused outright. A bucket policy naming
everyone lets plain curl, an unsigned boto3 client and a browser-style POST form do exactly
what it grants; Block Public Access (the bucket's and the account's, set with S3 Control)
takes it away again; a missing key is 403 without s3:ListBucket and 404 with it; and the
audit trail records the caller as CloudTrail records anonymous callers, in the bucket
owner's trail. KMS keys are never reachable anonymously."""

import json
import subprocess
import uuid

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def unsigned(server):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION,
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


def curl(*args):
    p = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", *args],
                       capture_output=True, text=True, check=True)
    body, _, status = p.stdout.rpartition("\n")
    return int(status), body


def control(server):
    """S3 Control as botocore reaches a custom endpoint whose ACCOUNT.HOST name does not
    resolve (an IP address): the `snow` region keeps the endpoint's host as it is."""
    return boto3.client("s3control", endpoint_url=server.endpoint, region_name="snow",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 1}))


def policy(bucket, *statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def everyone(actions, resource, **extra):
    return {"Effect": "Allow", "Principal": "*", "Action": actions, "Resource": resource, **extra}


def open_bucket(s3, name):
    """A bucket whose own Block Public Access is off (new buckets start with all four on)."""
    s3.create_bucket(Bucket=name)
    s3.delete_public_access_block(Bucket=name)


def test_unsigned_callers_get_exactly_what_everyone_is_granted(shared_server):
    s3, anon = shared_server.client(), unsigned(shared_server)
    b = f"anon-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="public/hello.txt", Body=b"hello, anyone")
    url = f"{shared_server.endpoint}/{b}/public/hello.txt"

    # Nothing granted: 403, from curl and from an unsigned SDK client alike.
    assert curl(url)[0] == 403
    assert err(anon.get_object, Bucket=b, Key="public/hello.txt") == (403, "AccessDenied")
    assert err(anon.list_objects_v2, Bucket=b) == (403, "AccessDenied")
    assert err(anon.list_buckets) == (403, "AccessDenied")
    assert err(anon.create_bucket, Bucket=f"{b}-anon") == (403, "AccessDenied")

    # New buckets block public policies: the grant is refused, in AWS's words.
    read = policy(b, everyone("s3:GetObject", f"arn:aws:s3:::{b}/public/*"))
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=b, Policy=read)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert "because public policies are blocked by the BlockPublicPolicy block public access setting" in \
        e.value.response["Error"]["Message"]

    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=read)
    status, body = curl(url)
    assert (status, body) == (200, "hello, anyone")
    got = anon.get_object(Bucket=b, Key="public/hello.txt")
    assert got["Body"].read() == b"hello, anyone"
    assert got["ServerSideEncryption"] == "AES256", "stored encrypted by default, readable by everyone granted"
    assert anon.head_object(Bucket=b, Key="public/hello.txt")["ContentLength"] == 13
    # Exactly what was granted: not other keys' prefixes, not listing, not writing.
    s3.put_object(Bucket=b, Key="private/x", Body=b"no")
    assert err(anon.get_object, Bucket=b, Key="private/x") == (403, "AccessDenied")
    assert err(anon.list_objects_v2, Bucket=b) == (403, "AccessDenied")
    assert err(anon.put_object, Bucket=b, Key="public/new", Body=b"x") == (403, "AccessDenied")
    assert err(anon.delete_object, Bucket=b, Key="public/hello.txt") == (403, "AccessDenied")
    assert curl("-X", "PUT", "--data-binary", "x", f"{shared_server.endpoint}/{b}/public/new")[0] == 403
    # A missing key looks forbidden to a caller who may not list the bucket...
    assert err(anon.get_object, Bucket=b, Key="public/missing") == (403, "AccessDenied")
    assert err(anon.head_object, Bucket=b, Key="public/missing") == (403, "403")
    status, body = curl(f"{shared_server.endpoint}/{b}/public/missing")
    assert status == 403 and "<Code>AccessDenied</Code>" in body and "<RequestId>" in body
    # ...and is NoSuchKey once listing is granted too.
    s3.put_bucket_policy(Bucket=b, Policy=policy(
        b, everyone("s3:GetObject", f"arn:aws:s3:::{b}/public/*"), everyone("s3:ListBucket", f"arn:aws:s3:::{b}")))
    assert err(anon.get_object, Bucket=b, Key="public/missing") == (404, "NoSuchKey")
    assert err(anon.head_object, Bucket=b, Key="public/missing") == (404, "404")
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=b)["Contents"]] == ["private/x", "public/hello.txt"]

    # The bucket's RestrictPublicBuckets takes a public grant away from everyone outside.
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True})
    assert err(anon.get_object, Bucket=b, Key="public/hello.txt") == (403, "AccessDenied")
    assert curl(url)[0] == 403
    assert s3.get_object(Bucket=b, Key="public/hello.txt")["Body"].read() == b"hello, anyone"


def test_signed_callers_without_list_permission_see_403_for_missing_keys(shared_server):
    s3, iam = shared_server.client(), shared_server.client("iam")
    b = f"anon-list-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    user = f"r{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}))
    k = iam.create_access_key(UserName=user)["AccessKey"]
    u = shared_server.client(access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert err(u.get_object, Bucket=b, Key="missing") == (403, "AccessDenied")
    iam.put_user_policy(UserName=user, PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{b}"}]}))
    assert err(u.get_object, Bucket=b, Key="missing") == (404, "NoSuchKey")
    # The owner always could.
    assert err(s3.get_object, Bucket=b, Key="missing") == (404, "NoSuchKey")


def test_anonymous_writes_and_browser_post_forms(shared_server):
    s3, anon = shared_server.client(), unsigned(shared_server)
    b = f"anon-drop-{uuid.uuid4().hex[:8]}"
    open_bucket(s3, b)
    # A POST form without signature fields is anonymous: refused until the policy allows it.
    form = {"key": "drop/from-form.txt", "Content-Type": "text/plain"}
    r = requests.post(f"{shared_server.endpoint}/{b}", data=form, files={"file": ("f.txt", b"posted anonymously")})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    s3.put_bucket_policy(Bucket=b, Policy=policy(b, everyone("s3:PutObject", f"arn:aws:s3:::{b}/drop/*")))
    r = requests.post(f"{shared_server.endpoint}/{b}", data=form, files={"file": ("f.txt", b"posted anonymously")})
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=b, Key="drop/from-form.txt")["Body"].read() == b"posted anonymously"
    anon.put_object(Bucket=b, Key="drop/sdk.txt", Body=b"put anonymously")
    assert curl("-X", "PUT", "--data-binary", "curl body", f"{shared_server.endpoint}/{b}/drop/curl.txt")[0] == 200
    assert s3.get_object(Bucket=b, Key="drop/curl.txt")["Body"].read() == b"curl body"
    # Written objects belong to the bucket and are encrypted like any other.
    head = s3.head_object(Bucket=b, Key="drop/sdk.txt")
    assert head["ServerSideEncryption"] == "AES256"
    assert err(anon.put_object, Bucket=b, Key="elsewhere.txt", Body=b"x") == (403, "AccessDenied")
    # Anonymous callers cannot reach KMS keys, whatever the bucket grants.
    kms = shared_server.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.put_object(Bucket=b, Key="drop/kms.txt", Body=b"kms", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    s3.put_bucket_policy(Bucket=b, Policy=policy(b, everyone(["s3:GetObject", "s3:PutObject"], f"arn:aws:s3:::{b}/drop/*")))
    assert err(anon.get_object, Bucket=b, Key="drop/kms.txt")[0] == 403
    assert err(anon.put_object, Bucket=b, Key="drop/k2", Body=b"x", ServerSideEncryption="aws:kms",
               SSEKMSKeyId=key)[0] == 403


def test_account_level_block_public_access_through_s3_control(shared_server):
    s3 = shared_server.client()
    account = shared_server.client("sts").get_caller_identity()["Account"]
    ctl = control(shared_server)
    b = f"anon-acct-{uuid.uuid4().hex[:8]}"
    open_bucket(s3, b)
    s3.put_bucket_policy(Bucket=b, Policy=policy(b, everyone("s3:GetObject", f"arn:aws:s3:::{b}/*")))
    s3.put_object(Bucket=b, Key="k", Body=b"public")
    url = f"{shared_server.endpoint}/{b}/k"
    assert curl(url) == (200, "public")

    assert err(ctl.get_public_access_block, AccountId=account) == (404, "NoSuchPublicAccessBlockConfiguration")
    ctl.put_public_access_block(AccountId=account, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    assert ctl.get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": True}
    # The account's setting wins over the bucket's (each setting: either level turns it on).
    assert curl(url)[0] == 403
    assert err(s3.get_public_access_block, Bucket=b) == (404, "NoSuchPublicAccessBlockConfiguration"), \
        "the bucket's own configuration is still absent"
    ctl.put_public_access_block(AccountId=account, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    assert curl(url) == (200, "public")
    assert err(s3.put_bucket_policy, Bucket=b,
               Policy=policy(b, everyone("s3:GetObject", f"arn:aws:s3:::{b}/*"))) == (403, "AccessDenied")
    # Another account's settings are not the caller's to read or change.
    assert err(ctl.get_public_access_block, AccountId="999999999999") == (403, "AccessDenied")
    assert err(ctl.put_public_access_block, AccountId=account, PublicAccessBlockConfiguration={}) == \
        (400, "InvalidRequest")
    r = ctl.delete_public_access_block(AccountId=account)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err(ctl.get_public_access_block, AccountId=account) == (404, "NoSuchPublicAccessBlockConfiguration")
    # The aws CLI, the same way.
    shared_server.aws("s3control", "put-public-access-block", "--region", "snow", "--account-id", account,
                      "--public-access-block-configuration", "RestrictPublicBuckets=true")
    got = shared_server.aws("s3control", "get-public-access-block", "--region", "snow", "--account-id", account,
                            expect_json=True)
    assert got["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert curl(url)[0] == 403
    shared_server.aws("s3control", "delete-public-access-block", "--region", "snow", "--account-id", account)
    assert curl(url) == (200, "public")


def test_anonymous_calls_are_in_the_bucket_owner_s_trail(server):
    s3 = server.client()
    b = f"anon-trail-{uuid.uuid4().hex[:8]}"
    open_bucket(s3, b)
    s3.put_bucket_policy(Bucket=b, Policy=policy(b, everyone("s3:GetObject", f"arn:aws:s3:::{b}/*")))
    s3.put_object(Bucket=b, Key="seen", Body=b"x")
    account = server.client("sts").get_caller_identity()["Account"]
    assert curl(f"{server.endpoint}/{b}/seen")[0] == 200
    assert curl("-X", "DELETE", f"{server.endpoint}/{b}/seen")[0] == 403
    ct = server.client("cloudtrail")
    found = {}
    for name in ("GetObject", "DeleteObject"):
        for e in ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])["Events"]:
            d = json.loads(e["CloudTrailEvent"])
            if d["userIdentity"].get("accountId") == "ANONYMOUS_PRINCIPAL":
                found[name] = d
    assert set(found) == {"GetObject", "DeleteObject"}, found
    for d in found.values():
        assert d["userIdentity"] == {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"}
        assert d["recipientAccountId"] == account
        assert d["requestParameters"]["bucketName"] == b
    assert "errorCode" not in found["GetObject"]
    assert found["DeleteObject"]["errorCode"] == "AccessDenied"


def test_a_post_form_s_fields_are_what_the_policy_sees(shared_server):
    """A form's fields stand for the headers of a PUT in the bucket policy's condition
    keys: a policy that denies an encryption request denies it by POST too."""
    s3 = shared_server.client()
    b = f"anon-form-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b, ObjectOwnership="ObjectWriter")
    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_policy(Bucket=b, Policy=policy(
        b, everyone("s3:PutObject", f"arn:aws:s3:::{b}/in/*"),
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}}}))
    url = f"{shared_server.endpoint}/{b}"
    r = requests.post(url, data={"key": "in/sse.txt", "x-amz-server-side-encryption": "AES256"},
                      files={"file": ("f", b"x")})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    r = requests.post(url, data={"key": "in/plain.txt"}, files={"file": ("f", b"x")})
    assert r.status_code == 204, r.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]] == ["in/plain.txt"]
