"""Bucket tagging with boto3 and the aws CLI: Put/Get/DeleteBucketTagging, `NoSuchTagSet`
when a bucket has none, AWS's checks of a tag set (a refused set changes nothing), the
integrity check S3 requires of the write, and the permissions (s3:PutBucketTagging,
s3:GetBucketTagging)."""

import base64
import hashlib
import json
import uuid

import pytest
from botocore.exceptions import ClientError

import s3raw


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"].get("Message")


def test_bucket_tags_round_trip_and_bad_sets_change_nothing(shared_server):
    s3 = shared_server.client()
    b = f"tags-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    assert err(s3.get_bucket_tagging, Bucket=b) == (404, "NoSuchTagSet", "The TagSet does not exist")
    tags = [{"Key": "team", "Value": "storage"}, {"Key": "cost-center", "Value": "42"}, {"Key": "empty", "Value": ""}]
    r = s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tags})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == tags
    for bad in [
        [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
        [{"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "k" * 129, "Value": "x"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
    ]:
        assert err(s3.put_bucket_tagging, Bucket=b, Tagging={"TagSet": bad})[:2] == (400, "InvalidTag"), bad
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == tags
    # Fifty is allowed (objects stop at ten).
    fifty = [{"Key": f"k{i:02d}", "Value": str(i)} for i in range(50)]
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": fifty})
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == fifty
    # The write needs Content-MD5 or a checksum, as every S3 configuration write.
    body = b'<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>'
    status, _, data = s3raw.request(shared_server.endpoint, "PUT", f"/{b}?tagging", body=body)
    assert (status, s3raw.error_code(data)) == (400, "InvalidRequest"), data
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, _, data = s3raw.request(shared_server.endpoint, "PUT", f"/{b}?tagging", body=body, headers={"Content-MD5": md5})
    assert status == 204, data
    # With the aws CLI.
    out = shared_server.aws("s3api", "get-bucket-tagging", "--bucket", b, expect_json=True)
    assert out["TagSet"] == [{"Key": "a", "Value": "b"}]
    shared_server.aws("s3api", "delete-bucket-tagging", "--bucket", b)
    assert err(s3.get_bucket_tagging, Bucket=b)[:2] == (404, "NoSuchTagSet")
    # Deleting when there is none is fine; a missing bucket is not.
    assert s3.delete_bucket_tagging(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert err(s3.get_bucket_tagging, Bucket=f"{b}-missing")[:2] == (404, "NoSuchBucket")


def test_bucket_tagging_needs_its_own_permissions(shared_server):
    s3 = shared_server.client()
    b = f"tags-perm-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    iam = shared_server.client("iam")
    name = f"tagger-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetBucketTagging", "Resource": f"arn:aws:s3:::{b}"}]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = shared_server.client("s3", access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    assert user.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "a", "Value": "1"}]
    assert err(user.put_bucket_tagging, Bucket=b, Tagging={"TagSet": []})[:2] == (403, "AccessDenied")
    assert err(user.delete_bucket_tagging, Bucket=b)[:2] == (403, "AccessDenied")
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "a", "Value": "1"}]
