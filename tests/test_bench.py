"""coffer-bench drives a real server and reports what scripts rely on (one JSON line)."""

import json
import os
import subprocess
from pathlib import Path

from conftest import ACCESS_KEY, REPO, SECRET_KEY


def bench_bin() -> str:
    return os.environ.get("COFFER_BENCH_BIN", str(REPO / "target" / "debug" / "coffer-bench"))


def run_bench(server, *args):
    p = subprocess.run(
        [bench_bin(), "--endpoint", server.endpoint, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p


def test_put_then_get_report_one_json_line(server):
    for op in ("put", "get"):
        p = run_bench(server, "--bucket", "bench-json", "--op", op, "--size", "4KiB", "--concurrency", "4", "--count", "40", "--json")
        assert p.returncode == 0, p.stderr
        lines = p.stdout.strip().splitlines()
        assert len(lines) == 1, p.stdout
        r = json.loads(lines[0])
        for field in ("ops_per_s", "mb_per_s", "p50_ms", "p99_ms", "errors"):
            assert field in r
        assert r["errors"] == 0
        assert r["ops"] == 40
        assert r["p50_ms"] <= r["p99_ms"]
    # The bucket was created, and the objects --op get reads exist with the right size.
    objs = server.client().list_objects_v2(Bucket="bench-json")["Contents"]
    assert all(o["Size"] == 4096 for o in objs)
    assert any("/r" in o["Key"] for o in objs)


def test_wrong_credentials_count_as_errors(server):
    p = subprocess.run(
        [bench_bin(), "--endpoint", server.endpoint, "--access-key", ACCESS_KEY, "--secret-key", "wrong",
         "--bucket", "bench-bad", "--op", "put", "--size", "1KiB", "--count", "3", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    # Creating the bucket is the first request and fails with 403.
    assert p.returncode != 0
    assert "403" in p.stderr


def test_bad_size_is_refused():
    p = subprocess.run([bench_bin(), "--endpoint", "http://127.0.0.1:1", "--access-key", "a", "--secret-key", "b",
                        "--bucket", "x", "--op", "put", "--size", "4XB"], capture_output=True, text=True)
    assert p.returncode != 0
    assert "unknown size unit" in p.stderr


def test_kms_workloads_report_one_json_line(server):
    key = server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    for op in ("kms-encrypt", "kms-decrypt", "kms-generate-data-key"):
        p = run_bench(server, "--op", op, "--key", key, "--size", "64", "--concurrency", "2", "--count", "30", "--json")
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout.strip())
        assert r["op"] == op
        assert r["ops"] == 30 and r["errors"] == 0


def test_kms_workload_needs_a_key(server):
    p = run_bench(server, "--op", "kms-encrypt", "--size", "32", "--count", "1")
    assert p.returncode != 0
    assert "--key" in p.stderr


def test_random_data_is_fresh_per_object_and_pattern_data_is_shared(server):
    """--data random (the default) writes bytes no other object has, so a store that
    deduplicates blocks is measured on data it really stores; --data pattern writes the
    same bytes every time. Both are checked by reading the objects back."""
    import hashlib
    s3 = server.client()
    for data, bucket in (("random", "bench-random"), ("pattern", "bench-pattern")):
        p = run_bench(server, "--bucket", bucket, "--op", "put", "--size", "1536KiB", "--data", data,
                      "--concurrency", "2", "--count", "4", "--json")
        assert p.returncode == 0, p.stderr
        blocks = []
        for o in s3.list_objects_v2(Bucket=bucket)["Contents"]:
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            assert len(body) == 1536 * 1024
            blocks += [hashlib.sha256(body[i:i + 4096]).digest() for i in range(0, len(body), 4096)]
        distinct = len(set(blocks))
        if data == "random":
            assert distinct == len(blocks), "a 4 KiB block repeated"
        else:
            assert distinct == 256, distinct  # the 1 MiB pattern's blocks, over and over


def test_signed_payloads_are_checked_by_the_server(server):
    for size in ("4KiB", "3MiB"):
        p = run_bench(server, "--bucket", "bench-signed", "--op", "put", "--size", size, "--payload", "signed",
                      "--concurrency", "2", "--count", "6", "--json")
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["errors"] == 0


def test_kms_workloads_need_no_size_and_object_workloads_do(server):
    key = server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    p = run_bench(server, "--op", "kms-generate-data-key", "--key", key, "--count", "5", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ops"] == 5
    p = run_bench(server, "--op", "put", "--bucket", "bench-nosize", "--count", "1")
    assert p.returncode != 0 and "--size" in p.stderr
