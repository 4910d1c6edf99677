"""Durability against lost unsynced writes, as a syscall-order check: the kill -9 tests kill
the process, and the kernel keeps what it had not yet written to disk, so a build with
every fsync removed would pass them. Here the server runs under strace, and every 200 to a
write (PutObject inline and as a blob file, UploadPart, CompleteMultipartUpload,
CreateBucket, a KMS CreateKey) must come after fsyncs that have finished:

- of SQLite's write-ahead log (the commit), for every write, after the request arrived;
- for a write that made a blob file: of the file, then of the staging directory it was
  renamed into, both before that commit (start-up recovery publishes a staged blob a
  committed record names, so the later rename into `blobs/` needs no sync of its own).

Each response is matched to its request by the socket it came on. Skipped without strace
(scripts/test installs it)."""

import os
import re
import shutil
from pathlib import Path

import pytest

import conftest
from conftest import TIER, Server

pytestmark = [
    pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace"),
    pytest.mark.skipif(TIER == "s3", reason="checks the embedded store's fsyncs"),
]

LINE = re.compile(r"^(?P<t>\d+\.\d+) (?P<call>\w+)\((?P<args>.*)\) += (?P<ret>-?\d+)(?: .*)? <(?P<dur>[\d.]+)>$")


def parse(trace_prefix):
    """Every completed syscall of every thread: (start, end, call, args), by start time."""
    events = []
    for f in Path(trace_prefix).parent.glob(Path(trace_prefix).name + ".*"):
        for line in f.read_text(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                t = float(m["t"])
                events.append((t, t + float(m["dur"]), m["call"], m["args"]))
    events.sort()
    return events


def socket_of(args):
    m = re.match(r"\d+<(socket:\[\d+\])>", args)
    return m and m.group(1)


def test_every_acknowledged_write_follows_its_fsyncs(tmp_path, monkeypatch):
    prefix = tmp_path / "trace"
    wrapper = tmp_path / "coffer-under-strace"
    wrapper.write_text(
        "#!/bin/sh\nexec strace -ff -ttt -T -y -qq -s 48 "
        "-e trace=fsync,fdatasync,rename,renameat,renameat2,pwrite64,write,writev,read,recvfrom "
        f"-o {prefix} {conftest.coffer_bin()} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("COFFER_BIN", str(wrapper))
    s = Server(tmp_path / "data").start()
    sent = 0
    try:
        c = s.client()
        c.create_bucket(Bucket="fsync-order")
        sent += 1
        for i in range(4):
            c.put_object(Bucket="fsync-order", Key=f"small{i}", Body=b"x" * 100)
            c.put_object(Bucket="fsync-order", Key=f"blob{i}", Body=os.urandom(300_000))
            sent += 2
        up = c.create_multipart_upload(Bucket="fsync-order", Key="mpu")["UploadId"]
        etag = c.upload_part(Bucket="fsync-order", Key="mpu", UploadId=up, PartNumber=1,
                             Body=os.urandom(200_000))["ETag"]
        c.complete_multipart_upload(Bucket="fsync-order", Key="mpu", UploadId=up,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        sent += 3
        s.client("kms").create_key()
        sent += 1
    finally:
        s.stop()

    events = parse(prefix)
    requests = {}  # socket -> start of the request being answered on it
    checked = blobs = 0
    for start, end, call, args in events:
        sock = socket_of(args)
        if sock and call in ("read", "recvfrom") and re.search(r'"(PUT|POST) ', args):
            requests[sock] = start
        elif sock and call in ("writev", "write") and '"HTTP/1.1 200' in args and sock in requests:
            since = requests.pop(sock)
            window = [e for e in events if e[0] >= since and e[1] <= start]
            # The commit: a write to the WAL, then a finished fsync of it, both since the
            # request arrived.
            first_write = next((e for e in window if e[2] in ("pwrite64", "write")
                                and "meta.sqlite-wal>" in e[3]), None)
            assert first_write, f"a 200 at {start} with no WAL write since its request"
            wal = [e for e in window if e[2] in ("fsync", "fdatasync") and "meta.sqlite-wal>" in e[3]
                   and e[0] >= first_write[1]]
            assert wal, f"a 200 at {start} with no finished WAL fsync after its commit's write"
            made = [e for e in window if e[2] == "write" and re.search(r"staging/[0-9a-f-]+\.tmp>", e[3])]
            for w in {re.search(r"staging/([0-9a-f-]+)\.tmp>", e[3]).group(1) for e in made}:
                blobs += 1
                file_sync = [e for e in window if e[2] in ("fsync", "fdatasync") and f"staging/{w}.tmp>" in e[3]]
                assert file_sync, f"blob {w} acknowledged without an fsync of its file"
                dir_sync = [e for e in window if e[2] == "fsync" and e[3].endswith("/staging>")
                            and e[0] >= file_sync[0][1]]
                assert dir_sync, f"blob {w} acknowledged without an fsync of the staging directory"
                assert any(e[0] >= dir_sync[0][1] for e in wal), \
                    f"blob {w}: the commit was not synced after the blob was"
            checked += 1
    assert checked == sent, f"matched {checked} responses to the {sent} writes sent"
    assert blobs >= 5, f"only {blobs} blob writes seen"
