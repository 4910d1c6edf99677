"""CORS from a real browser: a page served from another origin uploads and downloads an
object through presigned URLs with fetch() in headless Chromium (the browser sends the
preflight and enforces the answers), reads an exposed header, and is refused what the
bucket's rules do not allow. scripts/test installs Debian's chromium and chromium-driver;
without them (a bare developer machine) the test skips."""

import http.server
import json
import shutil
import threading
import uuid

import pytest

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver are not installed"
)

PAGE = b"<!doctype html><html><head><title>coffer cors</title></head><body>page</body></html>"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_origin():
    """A page on its own origin (another port of 127.0.0.1)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_script_timeout(30)
    yield d
    d.quit()


# Runs in the page: fetch() with the given init; resolves with what the page can see.
FETCH = """
const [url, init, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
fetch(url, init)
  .then(async r => done({ok: true, status: r.status, body: await r.text(),
                         etag: r.headers.get('ETag'), version: r.headers.get('x-amz-version-id')}))
  .catch(e => done({ok: false, error: String(e)}));
"""


def test_a_page_uploads_and_downloads_across_origins(shared_server, page_origin, browser):
    s3 = shared_server.client(signature_version="s3v4")
    b = f"cors-web-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=b)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "from-browser.txt"})
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "from-browser.txt"})
    del_url = s3.generate_presigned_url("delete_object", Params={"Bucket": b, "Key": "from-browser.txt"})
    browser.get(page_origin + "/")
    upload = {"method": "PUT", "body": "written by a browser", "headers": {"Content-Type": "text/plain; charset=utf-8"}}

    # Without CORS rules the browser refuses to let the page see anything (the preflight of
    # the PUT is refused), and nothing was written.
    r = browser.execute_async_script(FETCH, put_url, upload)
    assert r["ok"] is False, r
    assert "Failed to fetch" in r["error"]
    assert s3.list_objects_v2(Bucket=b).get("KeyCount") == 0

    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [page_origin],
        "AllowedMethods": ["PUT", "GET"],
        "AllowedHeaders": ["content-type"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 0,
    }]})

    r = browser.execute_async_script(FETCH, put_url, upload)
    assert r["ok"] and r["status"] == 200, r
    etag = s3.head_object(Bucket=b, Key="from-browser.txt")["ETag"]
    assert r["etag"] == etag, "the exposed ETag is readable by the page"
    assert s3.get_object(Bucket=b, Key="from-browser.txt")["Body"].read() == b"written by a browser"

    r = browser.execute_async_script(FETCH, get_url, {"method": "GET"})
    assert r["ok"] and r["status"] == 200 and r["body"] == "written by a browser", r
    assert r["version"] is None, "a header the rule does not expose stays hidden"

    # A method the rules do not allow: the preflight is refused, the object stays.
    r = browser.execute_async_script(FETCH, del_url, {"method": "DELETE"})
    assert r["ok"] is False, r
    assert s3.head_object(Bucket=b, Key="from-browser.txt")["ETag"] == etag

    # A header the rules do not allow is refused the same way.
    r = browser.execute_async_script(
        FETCH, put_url, {**upload, "headers": {**upload["headers"], "x-custom": json.dumps("no")}})
    assert r["ok"] is False, r
