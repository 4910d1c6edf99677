"""Nothing acknowledged is lost; nothing unacknowledged is left behind.

The server is killed with SIGKILL (no chance to flush or clean up) and restarted on the
same data directory."""

import hashlib
import os
import uuid
import socket
import threading
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server


def files_under(d: Path, sub: str):
    root = d / sub
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_acknowledged_writes_survive_kill_9(data_dir):
    s = Server(data_dir).start()
    c = s.client()
    c.create_bucket(Bucket="durable")
    small = os.urandom(1000)  # stored inline in the metadata store
    large = os.urandom(3 * 1024 * 1024 + 11)  # stored as a blob file
    c.put_object(Bucket="durable", Key="small", Body=small)
    c.put_object(Bucket="durable", Key="large", Body=large)
    up = c.create_multipart_upload(Bucket="durable", Key="multi")
    p1 = os.urandom(5 * 1024 * 1024)
    p2 = os.urandom(1234)
    e1 = c.upload_part(Bucket="durable", Key="multi", UploadId=up["UploadId"], PartNumber=1, Body=p1)["ETag"]
    e2 = c.upload_part(Bucket="durable", Key="multi", UploadId=up["UploadId"], PartNumber=2, Body=p2)["ETag"]
    c.complete_multipart_upload(
        Bucket="durable",
        Key="multi",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    c.delete_object(Bucket="durable", Key="small")
    c.put_object(Bucket="durable", Key="small", Body=small[::-1])
    s.kill9()

    s2 = Server(data_dir).start()
    try:
        c2 = s2.client()
        assert c2.get_object(Bucket="durable", Key="small")["Body"].read() == small[::-1]
        assert c2.get_object(Bucket="durable", Key="large")["Body"].read() == large
        assert c2.get_object(Bucket="durable", Key="multi")["Body"].read() == p1 + p2
        keys = [o["Key"] for o in c2.list_objects_v2(Bucket="durable")["Contents"]]
        assert keys == ["large", "multi", "small"]
    finally:
        s2.stop()


def _signed_put_head(endpoint: str, path: str, length: int) -> bytes:
    req = AWSRequest(
        method="PUT",
        url=endpoint + path,
        headers={"Content-Length": str(length), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(req)
    host = endpoint.split("://", 1)[1]
    head = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n"
    for k, v in req.headers.items():
        if k.lower() != "host":
            head += f"{k}: {v}\r\n"
    return (head + "\r\n").encode()


def test_upload_cut_by_a_crash_leaves_no_object_and_no_garbage(data_dir):
    s = Server(data_dir).start()
    c = s.client()
    c.create_bucket(Bucket="cut")
    old = os.urandom(2 * 1024 * 1024)
    c.put_object(Bucket="cut", Key="obj", Body=old)
    blobs_before = files_under(data_dir, "blobs")

    # Start overwriting "obj" with a 64 MiB body, send 8 MiB of it, then kill the server.
    host, port = s.endpoint.split("://", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(_signed_put_head(s.endpoint, "/cut/obj", 64 * 1024 * 1024))
    chunk = os.urandom(1024 * 1024)
    for _ in range(8):
        sock.sendall(chunk)
    # The server has written part of the body to staging by now (it streams to disk).
    staged = []
    for _ in range(200):
        staged = files_under(data_dir, "staging")
        if staged:
            break
        threading.Event().wait(0.05)
    assert staged, "the body should be streaming into staging"
    s.kill9()
    sock.close()

    s2 = Server(data_dir).start()
    try:
        c2 = s2.client()
        # The old object is intact; the interrupted one never became visible.
        assert c2.get_object(Bucket="cut", Key="obj")["Body"].read() == old
        assert files_under(data_dir, "staging") == []
        assert files_under(data_dir, "blobs") == blobs_before
    finally:
        s2.stop()


@pytest.mark.parametrize("default_encryption", ["sse-s3", "none"])
def test_overwrites_and_deletes_free_their_blobs(data_dir, default_encryption):
    args = ["--default-encryption", default_encryption]
    server = Server(data_dir, extra_args=args).start()
    c = server.client()
    c.create_bucket(Bucket="gc-test")
    for i in range(3):
        c.put_object(Bucket="gc-test", Key="k", Body=os.urandom(200_000 + i))
    c.put_object(Bucket="gc-test", Key="gone", Body=os.urandom(300_000))
    c.delete_object(Bucket="gc-test", Key="gone")
    server.stop()  # the collector may not have run yet; start-up recovery finishes the job
    s2 = Server(data_dir, extra_args=args).start()
    try:
        remaining = files_under(data_dir, "blobs")
        assert len(remaining) == 1, remaining
        body = s2.client().get_object(Bucket="gc-test", Key="k")["Body"].read()
        assert len(body) == 200_002
        stored = remaining[0].read_bytes()
        if default_encryption == "none":
            assert hashlib.sha256(stored).digest() == hashlib.sha256(body).digest()
        else:
            # The survivor is the last version's blob: its size is that body's in the
            # segment format (a 20-byte header, a 16-byte tag per 64 KiB segment), and
            # it holds none of the body in plaintext.
            segments = -(-len(body) // (64 * 1024))
            assert len(stored) == 20 + len(body) + 16 * segments, len(stored)
            assert body[1000:1064] not in stored
    finally:
        s2.stop()


def test_acknowledged_versions_survive_kill_9_during_concurrent_overwrites_and_deletes(data_dir):
    """Four clients overwrite and delete one key of a versioned bucket as fast as they can
    (small bodies stored inline, larger ones as blob files) while the server is killed
    with SIGKILL. After a restart every acknowledged version and delete marker is listed,
    each acknowledged version reads back byte for byte, and the key has exactly one
    latest version."""
    import time

    s = Server(data_dir).start()
    c = s.client()
    c.create_bucket(Bucket="ver-crash")
    c.put_bucket_versioning(Bucket="ver-crash", VersioningConfiguration={"Status": "Enabled"})
    acked_objects = {}  # version id -> sha256 of the body
    acked_markers = set()
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(n):
        cl = s.client()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 5 == 0:
                    vid = cl.delete_object(Bucket="ver-crash", Key="k")["VersionId"]
                    with lock:
                        acked_markers.add(vid)
                else:
                    body = os.urandom(200_000 if i % 3 == 0 else 700)
                    vid = cl.put_object(Bucket="ver-crash", Key="k", Body=body)["VersionId"]
                    with lock:
                        acked_objects[vid] = hashlib.sha256(body).hexdigest()
            except Exception:  # the server is gone: stop
                return

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    s.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked_objects) > 20 and acked_markers, (len(acked_objects), len(acked_markers))

    s2 = Server(data_dir).start()
    try:
        c2 = s2.client()
        versions, markers, latest = {}, set(), []
        kw = {"Bucket": "ver-crash"}
        while True:
            r = c2.list_object_versions(**kw)
            for v in r.get("Versions", []):
                versions[v["VersionId"]] = v
                if v["IsLatest"]:
                    latest.append(v["VersionId"])
            for m in r.get("DeleteMarkers", []):
                markers.add(m["VersionId"])
                if m["IsLatest"]:
                    latest.append(m["VersionId"])
            if not r["IsTruncated"]:
                break
            kw.update(KeyMarker=r["NextKeyMarker"], VersionIdMarker=r["NextVersionIdMarker"])
        assert set(acked_objects) <= set(versions), set(acked_objects) - set(versions)
        assert acked_markers <= markers, acked_markers - markers
        assert len(latest) == 1, latest
        for vid, digest in acked_objects.items():
            body = c2.get_object(Bucket="ver-crash", Key="k", VersionId=vid)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == digest, vid
    finally:
        s2.stop()


def test_a_crash_mid_lifecycle_pass_leaves_each_object_untouched_or_expired(data_dir):
    """kill -9 while the lifecycle worker is expiring thousands of objects: after restart
    every object is either there, whole, or gone, and no blob is left behind."""
    import concurrent.futures
    import time
    import urllib.request

    s = Server(data_dir, env={"COFFER_S3_DAY_SECONDS": "1"}).start()
    c = s.client(max_pool_connections=16)
    c.create_bucket(Bucket="expiring")
    bodies = {}
    for i in range(8000):
        # One in 80 is large enough for a blob file; the rest live inline.
        size = 80 * 1024 if i % 80 == 0 else 100
        bodies[f"k{i:05d}"] = hashlib.sha256(str(i).encode()).digest() * (size // 32)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: c.put_object(Bucket="expiring", Key=kv[0], Body=kv[1]), bodies.items()))
    c.put_bucket_lifecycle_configuration(Bucket="expiring", LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]})

    def acted():
        with urllib.request.urlopen(s.endpoint + "/_coffer/metrics") as r:
            for line in r.read().decode().splitlines():
                if line.startswith('coffer_s3_lifecycle_actions_total{bucket="expiring"'):
                    return int(line.rsplit(" ", 1)[1])
        return 0

    deadline = time.time() + 30
    while acted() == 0 and time.time() < deadline:
        time.sleep(0.005)
    s.kill9()

    # A day of 86,400 s: nothing is due at restart, so what we see is what the crash left.
    s2 = Server(data_dir).start()
    try:
        c2 = s2.client()
        left = set()
        for page in c2.get_paginator("list_objects_v2").paginate(Bucket="expiring"):
            left |= {o["Key"] for o in page.get("Contents", [])}
        assert 0 < len(left) < len(bodies), f"the crash did not land mid-pass ({len(left)} left)"
        for k in sorted(left)[::40] + [k for k in left if len(bodies[k]) > 1000]:
            assert c2.get_object(Bucket="expiring", Key=k)["Body"].read() == bodies[k], k
        for k in sorted(set(bodies) - left)[::40]:
            with pytest.raises(Exception) as e:
                c2.head_object(Bucket="expiring", Key=k)
            assert "404" in str(e.value), k
        # Blob files: exactly those of the large objects that are left (recovery collected
        # the rest).
        large_left = sum(1 for k in left if len(bodies[k]) > 1000)
        assert len(files_under(data_dir, "blobs")) == large_left
        assert files_under(data_dir, "staging") == []
    finally:
        s2.stop()


def test_a_committed_blob_still_in_staging_is_published_at_start_and_an_unreferenced_one_discarded(data_dir):
    """The crash window between a write's commit and its blob's publish: the record names a
    blob that is still in staging. Start-up recovery publishes it (the object reads back),
    and discards a finished staged blob that nothing references."""
    s = Server(data_dir).start()
    c = s.client()
    c.create_bucket(Bucket="staged")
    body = os.urandom(300_000)
    c.put_object(Bucket="staged", Key="k", Body=body)
    s.stop()
    published = files_under(data_dir, "blobs")
    assert len(published) == 1, published
    staging = data_dir / "staging"
    # As if the process died after the commit and before the rename into blobs/.
    published[0].rename(staging / published[0].name)
    # And a finished blob of a write that never committed.
    (staging / str(uuid.uuid4())).write_bytes(os.urandom(1000))
    s2 = Server(data_dir).start()
    try:
        assert [p.name for p in files_under(data_dir, "blobs")] == [published[0].name]
        assert files_under(data_dir, "staging") == []
        assert s2.client().get_object(Bucket="staged", Key="k")["Body"].read() == body
    finally:
        s2.stop()
