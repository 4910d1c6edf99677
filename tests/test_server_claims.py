"""Two promises README.md and ARCHITECTURE.md make about the server as a whole.

- Streaming: bodies are never held whole; the server's peak memory while an object streams
  in and out stays flat as the object grows (a 256 MiB object costs about what a 32 MiB
  one does), in plaintext and under SSE-KMS.
- Draining: SIGTERM stops accepting connections, lets a request in flight finish (an upload
  whose body is still arriving completes and is acknowledged), and exits 0."""

import hashlib
import http.client
import os
import signal
import socket
import time
import urllib.parse
from pathlib import Path

import s3raw
from conftest import Server

MiB = 1024 * 1024


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def pattern(n):
    """`n` bytes produced 1 MiB at a time (the client never holds the object either)."""
    block = hashlib.sha256(str(n).encode()).digest() * (MiB // 32)
    left = n
    while left:
        take = min(left, MiB)
        yield block[:take]
        left -= take


def stream_put(srv, path, size, headers=None):
    u = urllib.parse.urlsplit(srv.endpoint)
    h = {"Host": f"{u.hostname}:{u.port}", "Content-Length": str(size), **(headers or {})}
    signed = s3raw.sign("PUT", srv.endpoint + path, h, payload_hash=s3raw.UNSIGNED)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    try:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in signed.items():
            conn.putheader(k, v)
        conn.endheaders()
        for block in pattern(size):
            conn.send(block)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body[:300]
    finally:
        conn.close()


def stream_get(srv, path):
    u = urllib.parse.urlsplit(srv.endpoint)
    signed = s3raw.sign("GET", srv.endpoint + path, {"Host": f"{u.hostname}:{u.port}"})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    try:
        conn.request("GET", path, headers=signed)
        r = conn.getresponse()
        assert r.status == 200
        h = hashlib.sha256()
        n = 0
        while True:
            chunk = r.read(MiB)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return n, h.hexdigest()
    finally:
        conn.close()


def test_peak_memory_stays_flat_as_streamed_objects_grow(tmp_path):
    srv = Server(tmp_path / "data", extra_args=["--default-encryption", "none"]).start()
    try:
        srv.client().create_bucket(Bucket="flat")
        kid = srv.client("kms").create_key()["KeyMetadata"]["KeyId"]
        modes = {"plaintext": {}, "sse-kms": {"x-amz-server-side-encryption": "aws:kms",
                                              "x-amz-server-side-encryption-aws-kms-key-id": kid}}
        peaks = {}
        for size in (32 * MiB, 256 * MiB):
            for mode, headers in modes.items():
                key = f"/flat/{mode}-{size}"
                stream_put(srv, key, size, headers)
                n, digest = stream_get(srv, key)
                want = hashlib.sha256()
                for block in pattern(size):
                    want.update(block)
                assert (n, digest) == (size, want.hexdigest()), mode
            peaks[size] = peak_rss_mib(srv.proc.pid)
        grown = peaks[256 * MiB] - peaks[32 * MiB]
        print(f"\npeak RSS after 32 MiB objects: {peaks[32 * MiB]:.1f} MiB; after 256 MiB: "
              f"{peaks[256 * MiB]:.1f} MiB (debug build)")
        # Eight times the bytes; the peak moves by far less than one object of the small size.
        assert grown < 24, peaks
        assert peaks[256 * MiB] < 256, peaks
    finally:
        srv.stop()


def test_sigterm_drains_an_upload_in_flight_and_exits_0(tmp_path):
    srv = Server(tmp_path / "data").start()
    srv.client().create_bucket(Bucket="drain")
    u = urllib.parse.urlsplit(srv.endpoint)
    size = 8 * MiB
    body = os.urandom(size)
    h = {"Host": f"{u.hostname}:{u.port}", "Content-Length": str(size)}
    signed = s3raw.sign("PUT", srv.endpoint + "/drain/k", h, payload_hash=s3raw.UNSIGNED)
    head = "PUT /drain/k HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n"
    sock = socket.create_connection((u.hostname, u.port), timeout=60)
    try:
        sock.sendall(head.encode() + body[:MiB])
        srv.proc.send_signal(signal.SIGTERM)
        # New connections are refused once the signal has been taken.
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((u.hostname, u.port), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert srv.proc.poll() is None, "exited with a request in flight"
        sock.sendall(body[MiB:])
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    finally:
        sock.close()
    assert srv.proc.wait(timeout=60) == 0
    again = Server(tmp_path / "data").start()
    try:
        assert again.client().get_object(Bucket="drain", Key="k")["Body"].read() == body
    finally:
        again.stop()
