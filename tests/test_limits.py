"""AWS's limits, answered with AWS's errors and changing nothing (the ones tested elsewhere:
key length and EntityTooLarge in test_s3_boto3, clock skew and presigned expiry in
test_auth_edges and test_bad_input, the 8 KiB header section in test_http_bad_input):

- user-defined metadata over 2 KB (the UTF-8 bytes of names and values): MetadataTooLarge,
  on PutObject, CreateMultipartUpload and CopyObject with REPLACE;
- part numbers outside 1..10000: InvalidArgument;
- an XML request body over 20 MiB: MaxMessageLengthExceeded;
- more than 1000 keys in one DeleteObjects: MalformedXML; more than 10 object tags:
  InvalidTag; a bucket policy over 20 KB: MalformedPolicy;
- KMS plaintext over 4096 bytes: ValidationException; a KMS request body over 1 MiB is
  refused;
- an entity's inline policies over IAM's quota (2,048 characters for a user, 5,120 for a
  group, 10,240 for a role, white space not counted) and a managed policy over 6,144:
  LimitExceeded (409)."""

import base64
import hashlib
import json
import socket
import urllib.parse

import pytest
from botocore.exceptions import ClientError

import s3raw

MiB = 1024 * 1024


def error(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_s3_limits(server):
    s3 = server.client()
    s3.create_bucket(Bucket="limits")
    big = {"a": "v" * 2048}  # 1 + 2048 bytes
    fits = {"ab": "v" * 2046}  # exactly 2048
    assert error(s3.put_object, Bucket="limits", Key="m", Body=b"x", Metadata=big) == (400, "MetadataTooLarge")
    s3.put_object(Bucket="limits", Key="m", Body=b"x", Metadata=fits)
    assert s3.head_object(Bucket="limits", Key="m")["Metadata"] == fits
    assert error(s3.create_multipart_upload, Bucket="limits", Key="u", Metadata=big) == (400, "MetadataTooLarge")
    assert error(s3.copy_object, Bucket="limits", Key="c", CopySource="limits/m",
                 MetadataDirective="REPLACE", Metadata=big) == (400, "MetadataTooLarge")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="limits")["Contents"]] == ["m"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="limits")

    up = s3.create_multipart_upload(Bucket="limits", Key="parts")["UploadId"]
    for n in (0, 10001):
        assert error(s3.upload_part, Bucket="limits", Key="parts", UploadId=up, PartNumber=n,
                     Body=b"x") == (400, "InvalidArgument"), n
    s3.upload_part(Bucket="limits", Key="parts", UploadId=up, PartNumber=10000, Body=b"x")
    assert [p["PartNumber"] for p in s3.list_parts(Bucket="limits", Key="parts", UploadId=up)["Parts"]] == [10000]

    body = b"<Tagging><TagSet>" + b"<!-- padding -->" * (21 * MiB // 16) + b"</TagSet></Tagging>"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    # Refused by its declared length, before the body is read: the client, waiting for
    # 100 Continue, gets the refusal instead and never sends the body.
    u = urllib.parse.urlsplit(server.endpoint)
    headers = s3raw.sign("PUT", server.endpoint + "/limits?tagging",
                         {"Host": f"{u.hostname}:{u.port}", "Content-MD5": md5,
                          "Content-Length": str(len(body)), "Expect": "100-continue"}, body)
    head = "PUT /limits?tagging HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((u.hostname, u.port), timeout=60) as sock:
        sock.sendall(head.encode())
        reply = b""
        while b"</Error>" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:300]
    assert s3raw.error_code(reply.split(b"\r\n\r\n", 1)[1]) == "MaxMessageLengthExceeded", reply[:300]

    assert error(s3.delete_objects, Bucket="limits",
                 Delete={"Objects": [{"Key": f"k{n}"} for n in range(1001)]}) == (400, "MalformedXML")
    assert error(s3.put_object_tagging, Bucket="limits", Key="m",
                 Tagging={"TagSet": [{"Key": f"k{n}", "Value": "v"} for n in range(11)]}) == (400, "InvalidTag")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
              "Action": "s3:GetObject", "Resource": "arn:aws:s3:::limits/" + "x" * 21000}]}
    assert error(s3.put_bucket_policy, Bucket="limits", Policy=json.dumps(policy)) == (400, "MalformedPolicy")


def test_kms_limits(server):
    kms = server.client("kms")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    assert error(kms.encrypt, KeyId=kid, Plaintext=b"x" * 4097) == (400, "ValidationException")
    kms.encrypt(KeyId=kid, Plaintext=b"x" * 4096)
    status, _ = error(kms.encrypt, KeyId=kid, Plaintext=b"x",
                      EncryptionContext={f"k{i}": "v" * 100 for i in range(12_000)})
    assert status == 400


def doc(padding):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/" + "x" * padding}]})


def test_iam_policy_size_quotas(server):
    iam = server.client("iam")
    iam.create_user(UserName="quota")
    base = len("".join(doc(0).split()))
    # Exactly at the quota (white space is not counted), then one character over in a
    # second policy: the total is what counts.
    at = doc(2048 - base)
    assert len("".join(at.split())) == 2048
    iam.put_user_policy(UserName="quota", PolicyName="one", PolicyDocument=at)
    status, code = error(iam.put_user_policy, UserName="quota", PolicyName="two", PolicyDocument=doc(1))
    assert (status, code) == (409, "LimitExceeded")
    assert iam.list_user_policies(UserName="quota")["PolicyNames"] == ["one"]
    # Replacing the one policy with a smaller one is fine.
    iam.put_user_policy(UserName="quota", PolicyName="one", PolicyDocument=doc(10))
    iam.create_group(GroupName="quota")
    assert error(iam.put_group_policy, GroupName="quota", PolicyName="p",
                 PolicyDocument=doc(5200)) == (409, "LimitExceeded")
    iam.put_group_policy(GroupName="quota", PolicyName="p", PolicyDocument=doc(4000))
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                        "Principal": {"AWS": "*"}}]})
    iam.create_role(RoleName="quota", AssumeRolePolicyDocument=trust)
    assert error(iam.put_role_policy, RoleName="quota", PolicyName="p",
                 PolicyDocument=doc(10300)) == (409, "LimitExceeded")
    iam.put_role_policy(RoleName="quota", PolicyName="p", PolicyDocument=doc(9000))
    assert error(iam.create_policy, PolicyName="big", PolicyDocument=doc(6200)) == (409, "LimitExceeded")
    arn = iam.create_policy(PolicyName="fits", PolicyDocument=doc(6000))["Policy"]["Arn"]
    assert error(iam.create_policy_version, PolicyArn=arn, PolicyDocument=doc(6200)) == (409, "LimitExceeded")
