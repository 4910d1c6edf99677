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
