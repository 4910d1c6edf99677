"""Malformed, oversized and truncated HTTP, as a property: whatever arrives on a connection,
the server answers with an error (AWS's, in the protocol's own shape, wherever the request
was HTTP enough to have a protocol), or closes the connection; it never answers a 500; it
keeps serving; and a request it refused changed nothing in the store.

Cases are generated from a fixed seed (`COFFER_HTTP_FUZZ_SEED` to vary it,
`COFFER_HTTP_FUZZ_CASES` for how many): valid signed S3, KMS and IAM requests with a byte
flipped, inserted or removed in the head or the body, cut short (then half-closed), with
conflicting or impossible framing (Content-Length, Transfer-Encoding, chunk sizes, damaged
aws-chunked frames), oversized (a header section, a header count, a URI), with
`Expect: 100-continue` and a bad signature, and pipelined behind and before valid requests.
A case whose mutation left the request valid (it succeeded) is allowed to change the store;
every other case must leave it exactly as it was.

Requests that are not HTTP at all (a broken request line, a header hyper cannot parse, a
head over hyper's limits) are answered by the HTTP layer with a bare 400, 414 or 431, as a
front end answers them before any service sees the request."""

import hashlib
import os
import random
import socket
import urllib.parse

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

import s3raw
from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server

SEED = int(os.environ.get("COFFER_HTTP_FUZZ_SEED", "20261205"))
CASES = int(os.environ.get("COFFER_HTTP_FUZZ_CASES", "400"))
BUCKET = "http-fuzz"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("http-fuzz"), env={"COFFER_CLIENT_TIMEOUT_SECONDS": "2"})
    s.start()
    s3 = s.client()
    s3.create_bucket(Bucket=BUCKET)
    for i in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"k{i}", Body=f"object {i}".encode() * (i * 3000 + 1))
    yield s
    s.stop()


def hostport(srv):
    u = urllib.parse.urlsplit(srv.endpoint)
    return u.hostname, u.port


def json_signed(srv, service, target, body):
    """Headers for a KMS (JSON) or IAM (form) request signed for `service`."""
    h, p = hostport(srv)
    headers = {"Host": f"{h}:{p}"}
    if target:
        headers["X-Amz-Target"] = target
        headers["Content-Type"] = "application/x-amz-json-1.1"
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY),
                            service, REGION).add_auth(req)
    return dict(req.headers.items())


def raw(method, path, headers, body=b""):
    head = f"{method} {path} HTTP/1.1\r\n".encode()
    for k, v in headers.items():
        head += f"{k}: {v}\r\n".encode()
    return head + b"\r\n" + body


def s3_request(srv, method, path, body=b"", extra=None, payload_hash=None):
    h, p = hostport(srv)
    headers = {"Host": f"{h}:{p}", "Content-Length": str(len(body)), **(extra or {})}
    signed = s3raw.sign(method, srv.endpoint + path, headers, body, payload_hash)
    return raw(method, path, signed, body)


def valid_requests(srv):
    """Valid signed requests, each of which would change the store or read it."""
    kms_body = b'{"Description":"from the fuzzer"}'
    iam_body = b"Action=CreateUser&UserName=fuzzed&Version=2010-05-08"
    tagging = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
    delete = b"<Delete><Object><Key>k0</Key></Object></Delete>"
    md5 = lambda b: __import__("base64").b64encode(hashlib.md5(b).digest()).decode()
    return [
        s3_request(srv, "PUT", f"/{BUCKET}/new", b"fresh bytes " * 50),
        s3_request(srv, "PUT", f"/{BUCKET}/k1", b"overwrite"),
        s3_request(srv, "GET", f"/{BUCKET}/k2"),
        s3_request(srv, "GET", f"/{BUCKET}?list-type=2&prefix=k"),
        s3_request(srv, "DELETE", f"/{BUCKET}/k0"),
        s3_request(srv, "PUT", f"/{BUCKET}?tagging", tagging, {"Content-MD5": md5(tagging)}),
        s3_request(srv, "POST", f"/{BUCKET}?delete", delete, {"Content-MD5": md5(delete)}),
        s3_request(srv, "PUT", "/another-bucket"),
        raw("POST", "/", json_signed(srv, "kms", "TrentService.CreateKey", kms_body), kms_body),
        raw("POST", "/", json_signed(srv, "iam", None, iam_body), iam_body),
    ]


def streaming_put(srv, payload, chunk=64):
    """A signed aws-chunked PUT (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), framed by hand."""
    h, p = hostport(srv)
    framed_len = 0
    frames = [payload[i:i + chunk] for i in range(0, len(payload), chunk)] + [b""]
    # The frames' signatures chain from the seed signature; a wrong one is what the
    # mutations below produce, so zeros stand in (the server must refuse them anyway).
    body = b""
    for f in frames:
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(f), b"0" * 64, f)
    framed_len = len(body)
    headers = {"Host": f"{h}:{p}", "Content-Length": str(framed_len),
               "Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(len(payload))}
    signed = s3raw.sign("PUT", srv.endpoint + f"/{BUCKET}/streamed", headers, b"",
                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    return raw("PUT", f"/{BUCKET}/streamed", signed, body)


def mutate(rng, req):
    """One random damage to a request, avoiding changes SigV4 or HTTP treat as the same
    request (letter case, whitespace, the HTTP version). Returns (bytes, half-close?)."""
    while True:
        out, half_close = damage(rng, req)
        if out != req:
            return out, half_close


def damage(rng, req):
    head_end = req.index(b"\r\n\r\n") + 4
    kind = rng.choice(["flip", "insert", "delete", "truncate", "truncate-head", "length"])
    if kind == "truncate":
        return req[:rng.randrange(1, len(req))], True
    if kind == "truncate-head":
        return req[:rng.randrange(1, head_end)], True
    if kind == "length":
        delta = rng.choice([-5, -1, 1, 7, 10**6])
        out = req.split(b"\r\n")
        for i, line in enumerate(out):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1]) + delta
                out[i] = b"Content-Length: %d" % max(n, 0)
        return b"\r\n".join(out), True
    first_line_end = req.index(b"\r\n")
    version = req.rindex(b" HTTP/1.1", 0, first_line_end)
    while True:
        i = rng.randrange(len(req))
        if version <= i < first_line_end:
            continue
        if kind == "delete":
            return req[:i] + req[i + 1:], False
        if kind == "insert":
            b = bytes([rng.choice(b"\x00\r\n:;%&=/?#<>\"'{}\\\x7f\xff" + b"a1")])
            return req[:i] + b + req[i:], False
        flip = rng.choice([1, 2, 4, 8, 16, 64, 128])
        c = req[i] ^ flip
        if chr(req[i]).lower() == chr(c).lower() or c in b" \t":
            continue
        return req[:i] + bytes([c]) + req[i + 1:], False


def oversized(srv):
    h, p = hostport(srv)
    big = "a" * 9000
    return [
        ("header section over 8 KiB", s3_request(srv, "PUT", f"/{BUCKET}/big-meta", b"x",
                                                 {"x-amz-meta-big": big}), "RequestHeaderSectionTooLarge"),
        ("header over hyper's buffer", raw("GET", f"/{BUCKET}/k2", {"Host": "x", "X-A": "a" * 500_000}), None),
        ("300 header fields", raw("GET", f"/{BUCKET}/k2", {"Host": "x", **{f"X-{i}": "v" for i in range(300)}}), None),
        ("100 KiB URI", raw("GET", "/" + BUCKET + "/" + "k" * 100_000, {"Host": "x"}), None),
        ("1025-byte key", s3_request(srv, "PUT", f"/{BUCKET}/" + "k" * 1025, b"x"), "KeyTooLongError"),
        ("two Content-Lengths", raw("PUT", f"/{BUCKET}/two", {"Host": "x", "Content-Length": "3", "content-length": "4"}, b"abcd"), None),
        ("Content-Length and Transfer-Encoding",
         raw("PUT", f"/{BUCKET}/te", {"Host": "x", "Content-Length": "3", "Transfer-Encoding": "chunked"}, b"3\r\nabc\r\n0\r\n\r\n"), None),
        ("bad chunk size", raw("PUT", f"/{BUCKET}/te", {"Host": "x", "Transfer-Encoding": "chunked", "X-Amz-Decoded-Content-Length": "3"}, b"zz\r\nabc\r\n0\r\n\r\n"), None),
        ("huge chunk size", raw("PUT", f"/{BUCKET}/te", {"Host": "x", "Transfer-Encoding": "chunked", "X-Amz-Decoded-Content-Length": "3"}, b"ffffffffffffffffff\r\nabc\r\n"), None),
        ("negative Content-Length", raw("PUT", f"/{BUCKET}/neg", {"Host": "x", "Content-Length": "-1"}), None),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), None),
    ]


def snapshot(srv):
    s3 = srv.client()
    state = []
    for b in sorted(x["Name"] for x in s3.list_buckets()["Buckets"]):
        v = s3.list_object_versions(Bucket=b)
        state.append((b, sorted((o["Key"], o["VersionId"], o["ETag"], o["Size"])
                                for o in v.get("Versions", [])),
                      sorted((m["Key"], m["VersionId"]) for m in v.get("DeleteMarkers", []))))
        try:
            state.append(s3.get_bucket_tagging(Bucket=b)["TagSet"])
        except s3.exceptions.ClientError:
            state.append(None)
    state.append(sorted(k["KeyId"] for k in srv.client("kms").list_keys()["Keys"]))
    state.append(sorted(u["UserName"] for u in srv.client("iam").list_users()["Users"]))
    files = sorted(str(p.relative_to(srv.data_dir)) for d in ("blobs", "staging")
                   for p in (srv.data_dir / d).rglob("*") if p.is_file())
    state.append(files)
    return state


def exchange(srv, data, half_close, want=1):
    """Sends `data` on a fresh connection; returns the responses [(status, body, whole)]
    read until the server closes, goes quiet, or `want` whole responses have come."""
    sock = socket.create_connection(hostport(srv), timeout=10)
    try:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
            if not half_close and complete(got, want):
                break
        return responses(got)
    finally:
        sock.close()


def complete(buf, want):
    """Whether `buf` holds `want` whole responses."""
    rs = responses(buf)
    return len(rs) >= want and rs[-1][2]


def responses(buf):
    """Parses HTTP/1.1 responses: [(status, body, complete)]."""
    out = []
    while buf.startswith(b"HTTP/1.1 "):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            out.append((int(buf[9:12]), b"", False))
            break
        head = buf[:end].decode("latin-1")
        status = int(head[9:12])
        length = 0
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        body = buf[end + 4:end + 4 + length]
        out.append((status, body, len(body) == length))
        buf = buf[end + 4 + length:]
    return out


def same_request(a, b):
    """Whether two requests mean the same to HTTP and SigV4: request line, header names
    (any case) and values (trimmed), and body."""
    def meaning(r):
        if b"\r\n\r\n" not in r:
            return None
        head, body = r.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        headers = sorted((k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines[1:]))
        return lines[0], headers, body
    return meaning(a) is not None and meaning(a) == meaning(b)


def check_reply(status, body, expect_code=None):
    assert status >= 300 or status in (200, 204), status
    assert status != 500 and status != 503, (status, body[:300])
    if expect_code:
        assert body, f"expected {expect_code}, got a bare {status}"
    if status >= 400 and body:
        text = body.decode("utf-8", "replace")
        if text.startswith("<?xml") or text.startswith("<Error"):
            code = s3raw.error_code(body) or (
                text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else None)
            assert code, text[:300]
            if expect_code:
                assert code == expect_code, text[:300]
        elif text.startswith("{"):
            assert '"__type"' in text, text[:300]


def healthy(srv):
    status, _, body = s3raw.request(srv.endpoint, "GET", f"/{BUCKET}/k2")
    assert status == 200 and body.startswith(b"object 2"), (status, body[:100])


def test_malformed_and_truncated_requests_answer_errors_and_change_nothing(srv):
    rng = random.Random(SEED)
    before = snapshot(srv)
    accepted = 0
    kinds = {"refused": 0, "closed": 0, "accepted": 0}
    for n in range(CASES):
        base = rng.choice(valid_requests(srv) + [streaming_put(srv, os.urandom(300))])
        data, half_close = mutate(rng, base)
        got = exchange(srv, data, half_close)
        for status, body, _ in got:
            try:
                check_reply(status, body)
            except AssertionError as e:
                raise AssertionError(f"case {n} ({data[:600]!r}): {e}") from None
        if got and got[0][0] < 300:
            # Accepted: only a change HTTP and SigV4 do not see may be (the same request).
            assert same_request(base, data), f"case {n}: a damaged request was accepted: {data[:600]!r}"
            accepted += 1
            kinds["accepted"] += 1
            before = snapshot(srv)
            continue
        kinds["refused" if got else "closed"] += 1
        if n % 25 == 0:
            healthy(srv)
        after = snapshot(srv)
        assert after == before, f"case {n} changed the store: {data[:300]!r}"
    healthy(srv)
    print(f"\nhttp bad input: {CASES} cases, seed {SEED}: {kinds}")
    assert kinds["refused"] > CASES // 2, kinds


def test_oversized_and_contradictory_framing(srv):
    before = snapshot(srv)
    for name, data, code in oversized(srv):
        got = exchange(srv, data, False)
        assert got, f"{name}: no answer"
        status, body, _ = got[0]
        assert 400 <= status < 600, (name, status)
        check_reply(status, body, code)
        healthy(srv)
    assert snapshot(srv) == before


def test_expect_continue_with_a_bad_signature_never_reads_the_body(srv):
    before = snapshot(srv)
    h, p = hostport(srv)
    headers = s3raw.sign("PUT", srv.endpoint + f"/{BUCKET}/expect", {"Host": f"{h}:{p}",
                         "Content-Length": "11", "Expect": "100-continue"}, b"body bytes!")
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    # The body, if the server read it as the next request, would be a valid PUT.
    smuggled = s3_request(srv, "PUT", f"/{BUCKET}/smuggled", b"x")
    sock = socket.create_connection((h, p), timeout=10)
    try:
        sock.sendall(raw("PUT", f"/{BUCKET}/expect", headers))
        first = b""
        while b"\r\n\r\n" not in first:
            chunk = sock.recv(4096)
            if not chunk:
                break
            first += chunk
        assert first.startswith(b"HTTP/1.1 403"), first[:200]
        try:
            sock.sendall(smuggled)
            rest = sock.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            rest = b""
        assert not rest.startswith(b"HTTP/1.1 200"), rest[:200]
    finally:
        sock.close()
    assert snapshot(srv) == before


def test_pipelined_requests_are_answered_in_order_around_a_bad_one(srv):
    good = s3_request(srv, "GET", f"/{BUCKET}/k2")
    bad = s3_request(srv, "PUT", f"/{BUCKET}/k1", b"overwrite")
    bad = bad.replace(b"Signature=", b"Signature=0", 1)
    got = exchange(srv, good + bad + good, False, want=3)
    # HTTP/1.1 answers in order; the bad one in the middle is refused, the third served.
    assert [s for s, _, _ in got][:1] == [200], got
    assert got[1][0] in (400, 403), got
    check_reply(got[1][0], got[1][1])
    assert len(got) == 3 and got[2][0] == 200, [(s, b[:80]) for s, b, _ in got]


@pytest.mark.parametrize("path,body", [
    (f"/{BUCKET}?tagging", b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"),
    (f"/{BUCKET}?delete", b"<Delete><Object><Key>k2</Key></Object></Delete>"),
    ("/mismatched-bucket", b""),
], ids=["PutBucketTagging", "DeleteObjects", "CreateBucket"])
def test_a_document_body_not_matching_its_signed_sha256_is_a_mismatch_not_a_500(srv, path, body):
    """Found by the property test above: s3s answered a document body that did not match
    its signed x-amz-content-sha256 with 500 InternalError."""
    before = snapshot(srv)
    signed_for = hashlib.sha256(body + b"!").hexdigest()
    status, _, reply = s3raw.request(srv.endpoint, "PUT" if "delete" not in path else "POST",
                                     path, body, payload_hash=signed_for)
    assert status == 400, reply[:300]
    assert s3raw.error_code(reply) == "XAmzContentSHA256Mismatch", reply[:300]
    assert snapshot(srv) == before
