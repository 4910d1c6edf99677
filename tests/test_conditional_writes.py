"""Conditional writes and deletes with boto3, as S3 has offered them since 2024:
`If-None-Match: *` and `If-Match: ETAG` on PutObject and CompleteMultipartUpload, and
`If-Match` on DeleteObject and in DeleteObjects; 16 clients racing to create one key with
`If-None-Match: *` — exactly one wins, the rest get 412 (or 409 ConditionalRequestConflict)."""

import threading
import uuid

import pytest
from botocore.exceptions import ClientError


def err(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


@pytest.fixture
def bucket(shared_server):
    s3 = shared_server.client()
    b = f"cond-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=b)
    return b


def test_sixteen_racing_creators_exactly_one_wins(shared_server, bucket):
    clients = [shared_server.client() for _ in range(16)]
    start = threading.Barrier(16)
    results = [None] * 16

    def race(i):
        start.wait()
        try:
            clients[i].put_object(Bucket=bucket, Key="only-once", Body=f"writer {i}".encode(), IfNoneMatch="*")
            results[i] = "won"
        except ClientError as e:
            results[i] = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in enumerate(results) if r == "won"]
    assert len(winners) == 1, results
    assert all(r in ((412, "PreconditionFailed"), (409, "ConditionalRequestConflict")) for r in results if r != "won"), results
    body = clients[0].get_object(Bucket=bucket, Key="only-once")["Body"].read()
    assert body == f"writer {winners[0]}".encode()


def test_conditional_overwrite_and_multipart_completion(shared_server, bucket):
    s3 = shared_server.client()
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    assert err(s3.put_object, Bucket=bucket, Key="k", Body=b"v2", IfMatch='"0123"') == (412, "PreconditionFailed")
    assert err(s3.put_object, Bucket=bucket, Key="absent", Body=b"v", IfMatch=etag) == (404, "NoSuchKey")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    # CompleteMultipartUpload checks at completion.
    up = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    p = s3.upload_part(Bucket=bucket, Key="k", UploadId=up, PartNumber=1, Body=b"mp")
    parts = {"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]}
    assert err(s3.complete_multipart_upload, Bucket=bucket, Key="k", UploadId=up, MultipartUpload=parts,
               IfNoneMatch="*") == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"


def test_conditional_deletes_only_delete_the_version_named_by_its_etag(shared_server, bucket):
    s3 = shared_server.client()
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    assert err(s3.delete_object, Bucket=bucket, Key="k", IfMatch='"00000000000000000000000000000000"') == (
        412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"
    assert err(s3.delete_object, Bucket=bucket, Key="absent", IfMatch=etag) == (404, "NoSuchKey")
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert err(s3.head_object, Bucket=bucket, Key="k")[0] == 404
    # In DeleteObjects, per key.
    e1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": e1}, {"Key": "b", "ETag": '"ffffffffffffffffffffffffffffffff"'}]})
    assert [d["Key"] for d in r["Deleted"]] == ["a"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("b", "PreconditionFailed")]
    assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"b"
    # A versioned bucket: the condition is on the current version; a marker is no object.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v = s3.put_object(Bucket=bucket, Key="v", Body=b"x")
    m = s3.delete_object(Bucket=bucket, Key="v", IfMatch=v["ETag"])
    assert m["DeleteMarker"] is True
    assert err(s3.delete_object, Bucket=bucket, Key="v", IfMatch=v["ETag"]) == (404, "NoSuchKey")
    # With a version id, the ETag is that version's.
    assert err(s3.delete_object, Bucket=bucket, Key="v", VersionId=v["VersionId"], IfMatch='"00"') == (
        412, "PreconditionFailed")
    s3.delete_object(Bucket=bucket, Key="v", VersionId=v["VersionId"], IfMatch=v["ETag"])
