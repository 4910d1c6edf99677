"""The stock aws CLI against Coffer: high-level `s3` commands, `s3api` metadata, storage
classes and ranges, and the same over HTTPS (where botocore streams uploads with an
unsigned payload and a CRC32 trailer)."""

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest

from conftest import Server, tls_server as https_server

MiB = 1024 * 1024


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n
    return Path(path)


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def unique(prefix):
    unique.n = getattr(unique, "n", 0) + 1
    return f"{prefix}-{os.getpid()}-{unique.n}"


# --- high-level s3 commands -----------------------------------------------------------


def test_cp_64mib_multipart_roundtrip_is_byte_identical(shared_server, tmp):
    srv = shared_server
    b = unique("cli-big")
    srv.aws("s3", "mb", f"s3://{b}")
    src = write_random(tmp / "big.bin", 64 * MiB)
    srv.aws("s3", "cp", str(src), f"s3://{b}/dir/big.bin", "--only-show-errors", "--no-progress")

    head = srv.aws("s3api", "head-object", "--bucket", b, "--key", "dir/big.bin", expect_json=True)
    assert head["ContentLength"] == 64 * MiB
    # The CLI's default 8 MiB chunks: 8 parts, so a multipart ETag.
    assert head["ETag"].strip('"').endswith("-8"), head["ETag"]

    dst = tmp / "big.out"
    srv.aws("s3", "cp", f"s3://{b}/dir/big.bin", str(dst), "--only-show-errors", "--no-progress")
    assert dst.stat().st_size == 64 * MiB
    assert sha256_file(dst) == sha256_file(src)


def test_sync_of_a_tree_with_empty_files_does_not_stall(shared_server, tmp):
    """botocore (before 1.43.77) sends `Expect: 100-continue` with every PUT and misreads a
    connection whose empty-bodied PUT was answered without a 100: its next request on that
    connection then stalled a minute. The server closes such connections after answering,
    so a sync of a few hundred files, empty ones among them, takes seconds."""
    import socket
    import subprocess

    src = tmp / "tree"
    (src / "sub").mkdir(parents=True)
    for i in range(150):
        (src / f"f{i:03d}.txt").write_bytes(b"data %d\n" % i)
        (src / "sub" / f"empty{i:03d}").write_bytes(b"")
    b = unique("sync")
    shared_server.aws("s3", "mb", f"s3://{b}")
    # The stall was 60 s per connection: a sync that stalls once does not finish in time.
    shared_server.aws("s3", "sync", str(src), f"s3://{b}/", "--only-show-errors", timeout=45)
    keys = shared_server.client().get_paginator("list_objects_v2").paginate(Bucket=b).build_full_result()
    assert len(keys["Contents"]) == 300
    # On the wire: an empty PUT that expected a 100 is answered with Connection: close.
    import s3raw
    host, port = shared_server.endpoint.split("//")[1].split(":")
    headers = s3raw.sign("PUT", f"{shared_server.endpoint}/{b}/raw-empty",
                         {"Expect": "100-continue", "Content-Length": "0"})
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        lines = [f"PUT /{b}/raw-empty HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = sock.recv(65536).decode("latin-1").lower()
    assert head.startswith("http/1.1 200"), head
    assert "connection: close" in head, head


def test_ls_lists_buckets_objects_and_prefixes(shared_server, tmp):
    srv = shared_server
    b = unique("cli-ls")
    srv.aws("s3", "mb", f"s3://{b}")
    f = tmp / "small.txt"
    f.write_bytes(b"hello coffer\n")
    srv.aws("s3", "cp", str(f), f"s3://{b}/top.txt", "--only-show-errors")
    srv.aws("s3", "cp", str(f), f"s3://{b}/sub/inner.txt", "--only-show-errors")

    buckets = srv.aws("s3", "ls").stdout.splitlines()
    assert any(line.split()[-1] == b for line in buckets), buckets

    lines = srv.aws("s3", "ls", f"s3://{b}/").stdout.splitlines()
    assert any(line.split() == ["PRE", "sub/"] for line in lines), lines
    top = [line for line in lines if line.endswith(" top.txt")]
    assert len(top) == 1 and top[0].split()[2] == "13", lines
    assert not any("inner.txt" in line for line in lines), lines

    rec = srv.aws("s3", "ls", f"s3://{b}/", "--recursive").stdout.splitlines()
    assert sorted(line.split()[-1] for line in rec) == ["sub/inner.txt", "top.txt"]


def test_rm_and_rb_remove_objects_then_bucket(shared_server, tmp):
    srv = shared_server
    b = unique("cli-rm")
    srv.aws("s3", "mb", f"s3://{b}")
    f = tmp / "x.txt"
    f.write_bytes(b"x")
    srv.aws("s3", "cp", str(f), f"s3://{b}/a.txt", "--only-show-errors")
    srv.aws("s3", "cp", str(f), f"s3://{b}/b.txt", "--only-show-errors")

    # A non-empty bucket cannot be removed.
    p = srv.aws("s3", "rb", f"s3://{b}", check=False)
    assert p.returncode != 0
    assert "BucketNotEmpty" in p.stderr

    srv.aws("s3", "rm", f"s3://{b}/a.txt", "--only-show-errors")
    listed = srv.aws("s3api", "list-objects-v2", "--bucket", b, expect_json=True)
    assert [o["Key"] for o in listed["Contents"]] == ["b.txt"]

    srv.aws("s3", "rm", f"s3://{b}/", "--recursive", "--only-show-errors")
    srv.aws("s3", "rb", f"s3://{b}")
    p = srv.aws("s3api", "head-bucket", "--bucket", b, check=False)
    assert p.returncode != 0
    assert "404" in p.stderr
    assert not any(line.split()[-1] == b for line in srv.aws("s3", "ls").stdout.splitlines())


# --- s3api: metadata, storage class, ranges -------------------------------------------


@pytest.fixture
def cli_bucket(shared_server):
    b = unique("cli-api")
    shared_server.aws("s3api", "create-bucket", "--bucket", b)
    return b


def test_put_object_metadata_content_type_storage_class_show_in_head(shared_server, cli_bucket, tmp):
    srv = shared_server
    body = tmp / "doc.json"
    body.write_bytes(b'{"hello": "coffer"}')
    for key, cls in [("ia.json", "STANDARD_IA"), ("glacier.json", "GLACIER")]:
        srv.aws(
            "s3api", "put-object", "--bucket", cli_bucket, "--key", key, "--body", str(body),
            "--metadata", "color=blue,owner-name=alice",
            "--content-type", "application/json",
            "--storage-class", cls,
            expect_json=True,
        )
        head = srv.aws("s3api", "head-object", "--bucket", cli_bucket, "--key", key, expect_json=True)
        assert head["Metadata"] == {"color": "blue", "owner-name": "alice"}
        assert head["ContentType"] == "application/json"
        assert head["StorageClass"] == cls
        assert head["ContentLength"] == len(body.read_bytes())

    listed = srv.aws("s3api", "list-objects-v2", "--bucket", cli_bucket, expect_json=True)
    classes = {o["Key"]: o["StorageClass"] for o in listed["Contents"]}
    assert classes == {"ia.json": "STANDARD_IA", "glacier.json": "GLACIER"}


def test_get_object_range_returns_exact_slice_and_content_range(shared_server, cli_bucket, tmp):
    srv = shared_server
    data = os.urandom(10_000)
    src = tmp / "r.bin"
    src.write_bytes(data)
    srv.aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "r.bin", "--body", str(src))

    out = tmp / "slice.bin"
    meta = srv.aws(
        "s3api", "get-object", "--bucket", cli_bucket, "--key", "r.bin",
        "--range", "bytes=1000-2999", str(out), expect_json=True,
    )
    assert out.read_bytes() == data[1000:3000]
    assert meta["ContentRange"] == "bytes 1000-2999/10000"
    assert meta["ContentLength"] == 2000

    meta = srv.aws(
        "s3api", "get-object", "--bucket", cli_bucket, "--key", "r.bin",
        "--range", "bytes=-100", str(out), expect_json=True,
    )
    assert out.read_bytes() == data[-100:]
    assert meta["ContentRange"] == "bytes 9900-9999/10000"


def test_invalid_storage_class_is_invalid_storage_class(shared_server, cli_bucket, tmp):
    srv = shared_server
    src = tmp / "x"
    src.write_bytes(b"x")
    p = srv.aws(
        "s3api", "put-object", "--bucket", cli_bucket, "--key", "bad-class", "--body", str(src),
        "--storage-class", "FOO", check=False,
    )
    assert p.returncode != 0
    assert "InvalidStorageClass" in p.stderr, p.stderr
    p = srv.aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "bad-class", check=False)
    assert p.returncode != 0 and "404" in p.stderr


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server():
    with https_server("coffer-tls-") as s:
        yield s


def test_tls_cp_up_and_down_is_byte_identical(tls_server, tmp):
    srv = tls_server
    b = unique("tls-cp")
    srv.aws("s3", "mb", f"s3://{b}")
    big = write_random(tmp / "mid.bin", 3 * MiB + 12345)
    small = tmp / "small.txt"
    small.write_bytes(b"over TLS with a trailer\n")
    for f, key in [(big, "mid.bin"), (small, "small.txt")]:
        srv.aws("s3", "cp", str(f), f"s3://{b}/{key}", "--only-show-errors", "--no-progress")
        out = tmp / (key + ".out")
        srv.aws("s3", "cp", f"s3://{b}/{key}", str(out), "--only-show-errors", "--no-progress")
        assert sha256_file(out) == sha256_file(f), key
        head = srv.aws("s3api", "head-object", "--bucket", b, "--key", key, expect_json=True)
        assert head["ContentLength"] == f.stat().st_size
        assert head["ETag"] == '"' + hashlib.md5(f.read_bytes()).hexdigest() + '"'


def test_tls_put_object_records_crc32_from_trailer(tls_server, tmp):
    srv = tls_server
    b = unique("tls-api")
    srv.aws("s3api", "create-bucket", "--bucket", b)
    data = os.urandom(200_000)
    src = tmp / "p.bin"
    src.write_bytes(data)
    p = srv.aws("s3api", "put-object", "--bucket", b, "--key", "p.bin", "--body", str(src), "--debug")
    # The leg this test is about: an unsigned streaming body with a CRC32 trailer.
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in p.stderr
    assert "x-amz-trailer" in p.stderr.lower()
    put = json.loads(p.stdout)
    assert put["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    assert put.get("ChecksumCRC32") == crc32_b64(data), put

    head = srv.aws(
        "s3api", "head-object", "--bucket", b, "--key", "p.bin", "--checksum-mode", "ENABLED",
        expect_json=True,
    )
    assert head["ChecksumCRC32"] == crc32_b64(data)
    assert head["ContentLength"] == len(data)

    out = tmp / "p.out"
    srv.aws("s3api", "get-object", "--bucket", b, "--key", "p.bin", str(out), expect_json=True)
    assert out.read_bytes() == data


def test_tls_cp_small_file_head_checksum_matches_local_crc32(tls_server, tmp):
    srv = tls_server
    b = unique("tls-crc")
    srv.aws("s3", "mb", f"s3://{b}")
    data = b"checksum me, single part\n" * 1000
    src = tmp / "c.txt"
    src.write_bytes(data)
    srv.aws("s3", "cp", str(src), f"s3://{b}/c.txt", "--only-show-errors", "--no-progress")
    head = srv.aws(
        "s3api", "head-object", "--bucket", b, "--key", "c.txt", "--checksum-mode", "ENABLED",
        expect_json=True,
    )
    assert head["ChecksumCRC32"] == crc32_b64(data), head
