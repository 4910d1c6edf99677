"""The crash loop: concurrent writers against one data directory, the server killed with
SIGKILL at a random moment, restarted, and checked against what was acknowledged.

Each iteration starts the server, runs the writers (each owns its keys and does one
operation at a time, so at the kill at most one of its operations is in flight), kills the
server at a random moment, starts it again and checks:

- every acknowledged S3 write reads back with exactly its bytes, and every acknowledged
  delete is gone; a key whose operation was in flight is either as it was before or as the
  operation left it, never anything else (nothing half-visible); the same holds for
  objects written with SSE-KMS and by multipart upload;
- every acknowledged KMS key exists, each acknowledged on-demand rotation is listed, and
  every acknowledged ciphertext decrypts to its plaintext;
- every acknowledged IAM user exists with its acknowledged inline policy;
- nothing is left in staging after the restart's recovery;
- `coffer audit verify` passes (after a clean stop).

After the last iteration every object is deleted and the server restarted twice: no blob
file may remain (no orphan survived collection).

Run it with `scripts/crash-loop N` (or `python3 tests/crashloop.py N`); the pytest file
`test_crash_loop.py` runs a few iterations. Prints one line per iteration and a summary;
raises on the first broken promise, naming the seed to replay it (`--seed`)."""

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import Server, coffer_bin  # noqa: E402

BUCKET = "crash"
MiB = 1024 * 1024


def digest(b):
    return hashlib.sha256(b).hexdigest()


def server_gone(e):
    """Whether an error is the server going away (the crash), not an answer it gave. Any
    answer that is an error (a 500 included) is a finding and is raised."""
    status = getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status is None


class ObjectWriter:
    """PUTs (inline, blob-sized, SSE-KMS, multipart), overwrites and deletes of its own
    keys. `model[key]` is the acknowledged state: a SHA-256, or None for absent."""

    def __init__(self, n, rng):
        self.n = n
        self.rng = rng
        self.keys = [f"w{n}/k{i}" for i in range(4)]
        self.model = {k: None for k in self.keys}
        self.inflight = None  # (key, state the operation would leave)
        self.acked = 0
        self.errors = []

    def run(self, srv, kms_key, stop):
        s3 = srv.client()
        while not stop.is_set():
            key = self.rng.choice(self.keys)
            op = self.rng.choices(["small", "blob", "kms", "multipart", "delete"],
                                  [4, 3, 2, 1, 2])[0]
            if op == "delete":
                self.inflight = (key, None)
            else:
                size = {"small": 100, "blob": 150_000, "kms": 90_000, "multipart": 5 * MiB + 1000}[op]
                body = os.urandom(size)
                self.inflight = (key, digest(body))
            try:
                if op == "delete":
                    s3.delete_object(Bucket=BUCKET, Key=key)
                elif op == "kms":
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ServerSideEncryption="aws:kms",
                                  SSEKMSKeyId=kms_key)
                elif op == "multipart":
                    up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                    parts = []
                    for i, chunk in enumerate([body[:5 * MiB], body[5 * MiB:]], start=1):
                        etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up, PartNumber=i,
                                              Body=chunk)["ETag"]
                        parts.append({"PartNumber": i, "ETag": etag})
                    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up,
                                                 MultipartUpload={"Parts": parts})
                else:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            except Exception as e:
                if server_gone(e):
                    return
                self.errors.append(f"{op} {key}: {e}")
                return
            self.model[key] = self.inflight[1]
            self.inflight = None
            self.acked += 1

    def check(self, srv):
        s3 = srv.client()
        for key in self.keys:
            allowed = {self.model[key]}
            if self.inflight and self.inflight[0] == key:
                allowed.add(self.inflight[1])
            try:
                actual = digest(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                actual = None
            if actual not in allowed:
                raise AssertionError(f"{key}: read {actual}, acknowledged {self.model[key]}, "
                                     f"in flight {self.inflight}")
            self.model[key] = actual
        self.inflight = None


class KmsWriter:
    """CreateKey, RotateKeyOnDemand and Encrypt; every acknowledged key, rotation and
    ciphertext must survive."""

    def __init__(self, rng):
        self.rng = rng
        self.keys = {}  # key id -> acknowledged on-demand rotations
        self.ciphertexts = []  # (key id, blob, plaintext)
        self.acked = 0
        self.rotated = set()  # keys rotated since the last check
        self.errors = []
        self.checked_keys = 0
        self.checked_ciphertexts = 0

    def run(self, srv, stop):
        kms = srv.client("kms")
        while not stop.is_set():
            op = self.rng.choice(["create", "encrypt", "encrypt", "rotate"])
            try:
                if op == "create" or not self.keys:
                    kid = kms.create_key()["KeyMetadata"]["KeyId"]
                    self.keys[kid] = 0
                elif op == "encrypt":
                    kid = self.rng.choice(sorted(self.keys))
                    pt = os.urandom(32)
                    blob = kms.encrypt(KeyId=kid, Plaintext=pt)["CiphertextBlob"]
                    self.ciphertexts.append((kid, blob, pt))
                else:
                    kid = self.rng.choice(sorted(self.keys))
                    if self.keys[kid] >= 2:
                        continue
                    kms.rotate_key_on_demand(KeyId=kid)
                    self.keys[kid] += 1
                    self.rotated.add(kid)
            except Exception as e:
                if "LimitExceeded" in str(e) or "ConflictException" in str(e):
                    continue
                if not server_gone(e):
                    self.errors.append(f"{op}: {e}")
                return
            self.acked += 1

    def check(self, srv):
        """Everything acknowledged since the last check, and a sample of the rest (so that
        an iteration's check does not grow with the whole history)."""
        kms = srv.client("kms")
        keys = list(self.keys)  # in the order they were acknowledged
        rotated = [k for k in self.rotated if k in self.keys]
        for kid in keys[self.checked_keys:] + rotated + self.rng.sample(
                keys[:self.checked_keys], min(20, self.checked_keys)):
            assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled", kid
            listed = kms.list_key_rotations(KeyId=kid).get("Rotations", [])
            assert len(listed) >= self.keys[kid], (kid, self.keys[kid], listed)
        done = self.ciphertexts[:self.checked_ciphertexts]
        for kid, blob, pt in self.ciphertexts[self.checked_ciphertexts:] + self.rng.sample(
                done, min(20, len(done))):
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == pt, kid
        self.checked_keys = len(keys)
        self.checked_ciphertexts = len(self.ciphertexts)
        self.rotated.clear()


class IamWriter:
    """CreateUser then PutUserPolicy, one user at a time."""

    def __init__(self, rng, prefix):
        self.rng = rng
        self.prefix = prefix
        self.users = {}  # name -> policy document acknowledged, or None
        self.acked = 0
        self.errors = []
        self.checked = 0

    def run(self, srv, stop):
        iam = srv.client("iam")
        while not stop.is_set():
            name = f"{self.prefix}-{len(self.users)}"
            try:
                iam.create_user(UserName=name)
                self.users[name] = None
                doc = json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/{name}/*"}]})
                iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc)
                self.users[name] = doc
            except Exception as e:
                if "EntityAlreadyExists" in str(e):
                    # Created by the call in flight at the last crash, unacknowledged.
                    self.users[name] = None
                    continue
                if not server_gone(e):
                    self.errors.append(f"{name}: {e}")
                return
            self.acked += 1

    def check(self, srv):
        """Users acknowledged since the last check, and a sample of the rest."""
        iam = srv.client("iam")
        names = list(self.users)
        older = names[:self.checked]
        for name in names[self.checked:] + self.rng.sample(older, min(20, len(older))):
            doc = self.users[name]
            iam.get_user(UserName=name)
            if doc is not None:
                got = iam.get_user_policy(UserName=name, PolicyName="p")["PolicyDocument"]
                if isinstance(got, str):
                    got = json.loads(got)
                assert got == json.loads(doc), name
        self.checked = len(names)


def files(d):
    d = Path(d)
    return sorted(p for p in d.rglob("*") if p.is_file()) if d.exists() else []


def audit_verify(data_dir):
    p = subprocess.run([coffer_bin(), "audit", "verify", "--data-dir", str(data_dir)],
                       capture_output=True, text=True)
    if p.returncode != 0 or "audit trail intact" not in p.stdout:
        raise AssertionError(f"audit verify failed:\n{p.stdout}\n{p.stderr}")


def crash_loop(iterations, seed, data_dir, writers=4, log=print):
    rng = random.Random(seed)
    data_dir = Path(data_dir)
    srv = Server(data_dir).start()
    s3 = srv.client()
    s3.create_bucket(Bucket=BUCKET)
    kms_key = srv.client("kms").create_key()["KeyMetadata"]["KeyId"]
    srv.stop()
    objects = [ObjectWriter(n, random.Random(rng.random())) for n in range(writers)]
    kms = KmsWriter(random.Random(rng.random()))
    iam = IamWriter(random.Random(rng.random()), "crash")
    totals = {"acked": 0, "kill_after_s": []}
    for it in range(iterations):
        srv = Server(data_dir).start()
        stop = threading.Event()
        before = sum(w.acked for w in objects) + kms.acked + iam.acked
        threads = [threading.Thread(target=w.run, args=(srv, kms_key, stop)) for w in objects]
        threads.append(threading.Thread(target=kms.run, args=(srv, stop)))
        threads.append(threading.Thread(target=iam.run, args=(srv, stop)))
        for t in threads:
            t.start()
        wait = rng.uniform(0.2, 2.0)
        time.sleep(wait)  # the random moment of the crash
        srv.kill9()
        stop.set()
        for t in threads:
            t.join()
        acked = sum(w.acked for w in objects) + kms.acked + iam.acked - before
        errors = [e for w in [*objects, kms, iam] for e in w.errors]
        assert not errors, f"crash loop seed {seed}, iteration {it}: the server answered errors: {errors}"
        srv = Server(data_dir).start()
        try:
            staged = files(data_dir / "staging")
            assert staged == [], f"iteration {it}: left in staging after recovery: {staged}"
            for w in objects:
                w.check(srv)
            kms.check(srv)
            iam.check(srv)
        except AssertionError as e:
            raise AssertionError(f"crash loop seed {seed}, iteration {it}: {e}") from None
        finally:
            srv.stop()
        audit_verify(data_dir)
        totals["acked"] += acked
        totals["kill_after_s"].append(wait)
        log(f"iteration {it + 1}/{iterations}: killed after {wait:.2f} s, {acked} operations "
            f"acknowledged, all intact")
    # No orphan: with every object deleted, collection leaves no blob behind.
    srv = Server(data_dir).start()
    try:
        c = srv.client()
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for o in page.get("Contents", []):
                c.delete_object(Bucket=BUCKET, Key=o["Key"])
        for u in c.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
            c.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
    finally:
        srv.stop()
    Server(data_dir).start().stop()
    left = files(data_dir / "blobs") + files(data_dir / "staging")
    assert left == [], f"crash loop seed {seed}: blobs left after deleting everything: {left}"
    summary = {
        "iterations": iterations,
        "seed": seed,
        "acknowledged_operations": totals["acked"],
        "kms_keys": len(kms.keys),
        "ciphertexts": len(kms.ciphertexts),
        "iam_users": len(iam.users),
        "orphan_blobs": 0,
    }
    log("crash loop: " + json.dumps(summary))
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("iterations", type=int)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    with tempfile.TemporaryDirectory(prefix="coffer-crash-loop-") as d:
        crash_loop(a.iterations, seed, a.data_dir or d, log=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
