"""Client tests: start the real `coffer` binary on a free loopback port with a temp data dir
and drive it with the stock aws CLI and boto3.

The binary comes from $COFFER_BIN (scripts/test sets it); by default target/debug/coffer.
"""

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest

REPO = Path(__file__).resolve().parent.parent
ACCESS_KEY = "AKIACOFFERTESTKEY001"
SECRET_KEY = "coffer/test/secret/key/0123456789abcdefgh"
REGION = "us-east-1"


def coffer_bin() -> str:
    return os.environ.get("COFFER_BIN", str(REPO / "target" / "debug" / "coffer"))


# COFFER_TEST_TIER=s3 runs every server the tests start as a scale-out node: metadata in
# PostgreSQL (a schema per server) and object bytes in another S3 store (one more coffer,
# started once per session), unless the test gives --meta or --blobs itself. scripts/test
# runs the object tests a second time this way.
TIER = os.environ.get("COFFER_TEST_TIER", "")
_tier = {}


def blob_tier():
    """The session's S3 blob store (a coffer of the embedded kind) and its bucket."""
    if "server" not in _tier:
        d = tempfile.mkdtemp(prefix="coffer-tier-")
        tier = Server(Path(d), scale_out=False).start()
        tier.client().create_bucket(Bucket="tier")
        _tier.update(server=tier, dir=d, schemas={})

        def stop():
            tier.stop()
            for schema in _tier["schemas"].values():
                subprocess.run(["psql", "-w", "-X", "-q", "-d", PG_URL, "-c",
                                f"DROP SCHEMA IF EXISTS {schema} CASCADE"], capture_output=True)
            shutil.rmtree(d, ignore_errors=True)

        atexit.register(stop)
    return _tier["server"]


def passes(server, work: str) -> int:
    """Finished passes of `server`'s background `work` (`lifecycle`, `access_logs`), from
    its metrics."""
    import re
    import ssl
    import urllib.request
    ctx = ssl._create_unverified_context()
    text = urllib.request.urlopen(server.endpoint + "/_coffer/metrics", context=ctx, timeout=30).read().decode()
    m = re.search(r'coffer_background_passes_total\{work="%s"\} (\d+)' % work, text)
    return int(m.group(1)) if m else 0


def after_passes(server, work: str, n: int = 2, bound: float = 120):
    """Waits until `n` more passes of `server`'s background `work` have finished: what a
    test checks for something that must not happen waits for the work, not for a time."""
    import time
    target = passes(server, work) + n
    deadline = time.monotonic() + bound
    while passes(server, work) < target:
        assert time.monotonic() < deadline, f"{work} did not run {n} more times in {bound} s"
        time.sleep(0.05)


class Server:
    """One `coffer serve` process. `start()` waits for its `listening on` line."""

    def __init__(self, data_dir, extra_args=(), env=None, scale_out=True):
        # None: a `--dev` server, which keeps its state in a directory of its own.
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.extra_args = list(extra_args)
        self.scale_out = None
        if (TIER == "s3" and scale_out and data_dir is not None
                and not {"--meta", "--blobs"} & set(self.extra_args)):
            tier = blob_tier()
            # A data directory started again is the same node of the same deployment.
            self.scale_out = _tier["schemas"].get(str(self.data_dir.resolve()))
            if self.scale_out is None:
                self.scale_out = f"coffer_tier_{uuid.uuid4().hex}"
                psql(f"CREATE SCHEMA {self.scale_out}")
                _tier["schemas"][str(self.data_dir.resolve())] = self.scale_out
            self.extra_args += ["--meta", url_in(self.scale_out),
                                "--blobs", f"s3://tier/{self.scale_out}?endpoint={tier.endpoint}"]
        self.env = dict(os.environ)
        self.env.update(
            {
                "COFFER_ROOT_ACCESS_KEY_ID": ACCESS_KEY,
                "COFFER_ROOT_SECRET_ACCESS_KEY": SECRET_KEY,
                "COFFER_LOG": "warn",
            }
        )
        if self.scale_out:
            self.env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        self.env.update(env or {})
        self.proc = None
        self.endpoint = None
        self.stdout_lines = []
        self.stderr_lines = []

    def start(self, timeout=30):
        self.proc = subprocess.Popen(
            [coffer_bin(), "serve",
             *(["--data-dir", str(self.data_dir)] if self.data_dir is not None else []),
             *(["--listen", "127.0.0.1:0"] if "--listen" not in self.extra_args else []),
             *self.extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            text=True,
        )
        found = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                self.stdout_lines.append(line.rstrip("\n"))
                if line.startswith("listening on "):
                    self.endpoint = line.split(" ", 2)[2].strip()
                    found.set()
            found.set()

        def read_stderr():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip("\n"))

        readers = [threading.Thread(target=read_stdout, daemon=True),
                   threading.Thread(target=read_stderr, daemon=True)]
        for r in readers:
            r.start()
        found.wait(timeout)
        if self.endpoint is None:
            self.proc.kill()
            self.proc.wait()
            # The process is gone: let the readers take in its last lines (its error).
            for r in readers:
                r.join(5)
            raise RuntimeError(
                "coffer did not start:\n" + "\n".join(self.stdout_lines + self.stderr_lines)
            )
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def at_rest(self):
        """Everything this server keeps at rest, as (name, bytes): the files of its data
        directory (`meta.sqlite`, `blobs/...`) and, for a scale-out node, the objects of its
        blob tier (`tier/KEY`, as the backing store holds them) and its metadata tables
        (`meta:TABLE`, in PostgreSQL's binary COPY format, where bytea values are raw)."""
        for p in sorted(self.data_dir.rglob("*")):
            try:
                if p.is_file():
                    yield str(p.relative_to(self.data_dir)), p.read_bytes()
            except FileNotFoundError:  # a transient SQLite file went away
                pass
        if not self.scale_out:
            return
        tier = _tier["server"].client()
        for page in tier.get_paginator("list_objects_v2").paginate(Bucket="tier", Prefix=self.scale_out + "/"):
            for o in page.get("Contents", []):
                yield "tier/" + o["Key"], tier.get_object(Bucket="tier", Key=o["Key"])["Body"].read()
        tables = psql(f"SELECT tablename FROM pg_tables WHERE schemaname = '{self.scale_out}'").split()
        for table in tables:
            dump = subprocess.run(["psql", "-w", "-X", "-q", "-d", PG_URL, "-c",
                                   f"COPY {self.scale_out}.{table} TO STDOUT (FORMAT binary)"],
                                  capture_output=True, check=True)
            yield f"meta:{table}", dump.stdout

    def stored_with(self, needle: bytes):
        """The names of what this server keeps at rest (see `at_rest`) that contain `needle`."""
        return [name for name, data in self.at_rest() if needle in data]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def client(self, service="s3", access_key=ACCESS_KEY, secret_key=SECRET_KEY, **config):
        cfg = dict(
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        cfg.update(config)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=botocore.config.Config(**cfg),
            verify=False,
        )

    def aws(self, *args, check=True, expect_json=False, input=None, env=None, **kw):
        """Runs the aws CLI against this server. Returns the CompletedProcess (or parsed
        JSON with expect_json)."""
        e = dict(os.environ)
        e.update(
            {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_PAGER": "",
            }
        )
        e.update(env or {})
        cmd = ["aws", "--endpoint-url", self.endpoint, *args]
        if self.endpoint.startswith("https"):
            cmd.insert(1, "--no-verify-ssl")
        p = subprocess.run(cmd, capture_output=True, text=input is None or isinstance(input, str), env=e, input=input, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        if expect_json:
            return json.loads(p.stdout) if p.stdout.strip() else {}
        return p


@contextlib.contextmanager
def tls_server(prefix: str):
    """A server on HTTPS with a fresh self-signed certificate for 127.0.0.1/localhost."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        d = Path(d)
        cert, key = d / "cert.pem", d / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        data = d / "data"
        data.mkdir()
        s = Server(data, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
        try:
            assert s.endpoint.startswith("https://"), s.endpoint
            yield s
        finally:
            s.stop()


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="coffer-test-") as d:
        yield Path(d)


@pytest.fixture
def server(data_dir):
    s = Server(data_dir).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shared_server():
    """A server shared by the tests of one module (each test uses its own buckets)."""
    with tempfile.TemporaryDirectory(prefix="coffer-test-") as d:
        s = Server(d).start()
        yield s
        s.stop()


@pytest.fixture
def s3(shared_server):
    return shared_server.client()


_bucket_counter = [0]


@pytest.fixture
def bucket(s3):
    """A fresh, empty bucket on the shared server."""
    _bucket_counter[0] += 1
    name = f"test-{os.getpid()}-{_bucket_counter[0]}"
    s3.create_bucket(Bucket=name)
    return name


# PostgreSQL, for the scale-out tests: COFFER_TEST_POSTGRES_URL (scripts/test starts a
# server if the machine has none), else the machine's own. Each test gets a schema of its own.
PG_URL = os.environ.get("COFFER_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def psql(sql: str) -> str:
    p = subprocess.run(["psql", "-w", "-X", "-tA", "-d", PG_URL, "-c", sql], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"psql failed: {p.stderr}")
    return p.stdout.strip()


@pytest.fixture
def schema():
    name = f"coffer_pytest_{uuid.uuid4().hex}"
    psql(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        psql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def url_in(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-c%20search_path%3D{schema}"
