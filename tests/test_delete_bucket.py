"""DeleteBucket with multipart uploads in progress: S3 deletes a bucket whose only content
is unfinished uploads, aborting them (its API reference asks only that every object version
and delete marker be gone), where Coffer used to refuse with BucketNotEmpty. Nothing of the
aborted upload may stay: not in listings of a bucket re-created under the name, not on
disk."""

import os
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import Server

MiB = 1024 * 1024


def files_containing(root: Path, needle: bytes):
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            try:
                if needle in p.read_bytes():
                    found.append(p)
            except OSError:
                pass
    return found


@pytest.mark.parametrize("encryption", ["sse-s3", "none"])
def test_delete_bucket_aborts_unfinished_uploads_and_leaves_nothing_on_disk(data_dir, encryption):
    s = Server(data_dir, extra_args=["--default-encryption", encryption]).start()
    try:
        s3 = s.client("s3")
        b = f"mpu-del-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=b)
        up = s3.create_multipart_upload(Bucket=b, Key="pending")
        part = os.urandom(5 * MiB)
        s3.upload_part(Bucket=b, Key="pending", UploadId=up["UploadId"], PartNumber=1, Body=part)
        # A small part too: small bodies are kept inline in the metadata store.
        small = b"SMALL-PART-" + os.urandom(16).hex().encode()
        up2 = s3.create_multipart_upload(Bucket=b, Key="small")
        s3.upload_part(Bucket=b, Key="small", UploadId=up2["UploadId"], PartNumber=1, Body=small)
        assert s3.list_objects_v2(Bucket=b)["KeyCount"] == 0
        assert len(s3.list_multipart_uploads(Bucket=b)["Uploads"]) == 2

        s3.delete_bucket(Bucket=b)
        with pytest.raises(ClientError) as e:
            s3.head_bucket(Bucket=b)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

        s3.create_bucket(Bucket=b)
        assert not s3.list_multipart_uploads(Bucket=b).get("Uploads"), "the old uploads survived"
        with pytest.raises(ClientError) as e:
            s3.list_parts(Bucket=b, Key="pending", UploadId=up["UploadId"])
        assert e.value.response["Error"]["Code"] == "NoSuchUpload"

        # The part's blob is collected, and the metadata store's freed pages and
        # write-ahead log scrubbed, in the background: wait for both (bounded).
        sample = part[1 * MiB:1 * MiB + 64]
        deadline = time.time() + 20
        while time.time() < deadline:
            blobs = [p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size >= 5 * MiB]
            inline = files_containing(data_dir, small)
            if not blobs and not inline:
                break
            time.sleep(0.2)
        assert not blobs, f"blob files left after the bucket was deleted: {blobs}"
        assert not inline, f"the small part's bytes are still in {inline}"
    finally:
        s.stop()
    # Stopped cleanly: no file in the data directory holds any of the aborted parts' bytes
    # (plaintext parts in particular: with encryption "none").
    assert files_containing(data_dir, sample) == []
    assert files_containing(data_dir, small) == []
