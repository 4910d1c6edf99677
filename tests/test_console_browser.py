"""The web console in a real browser (headless Chromium driven by chromium-driver):
sign in, create a key and a bucket whose default encryption is SSE-KMS under it, upload a
20 MiB file through the page (a multipart upload in 8 MiB parts, the progress bar reaching
100%), download it byte for byte, read the key's impact report (which counts that object),
disable the key from the console, see the download fail with the KMS's reason, and find
both calls in the audit page, made with the console's user agent.

A screenshot of every page is written under $COFFER_TEST_OUTPUT/console (by default
target/test-output/console). scripts/test installs chromium and chromium-driver; without
them (a bare developer machine) the test skips."""

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from conftest import ACCESS_KEY, REPO, SECRET_KEY  # noqa: E402

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver are not installed"
)

OUT = Path(os.environ.get("COFFER_TEST_OUTPUT", REPO / "target" / "test-output")) / "console"


@pytest.fixture
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_script_timeout(120)
    yield d
    d.quit()


def shot(browser, name):
    OUT.mkdir(parents=True, exist_ok=True)
    # The whole page, not only the window: the tallest pages are the key's and the audit's.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(1000, min(height + 40, 6000)))
    browser.save_screenshot(str(OUT / f"{name}.png"))
    browser.set_window_size(1280, 1000)


def wait(browser, seconds=60):
    return WebDriverWait(browser, seconds)


def alert_text(browser, bound=30):
    """The text of the page's alerts, once there is one: the page a form's POST leads to
    may still be loading when the click returns."""
    deadline = time.monotonic() + bound
    while True:
        try:
            text = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role=alert]")).strip()
        except StaleElementReferenceException:  # the page changed under the read
            text = ""
        if text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


# An uploaded page that tries to read the console with the visitor's session.
TRAP = b"""<!doctype html><title>wait</title><script>
fetch('/_coffer/console/buckets', {credentials: 'include'})
  .then(r => r.text())
  .then(t => { document.title = t.includes('name="csrf"') ? 'LEAK' : 'SAFE'; })
  .catch(() => { document.title = 'SAFE'; });
</script>"""


# Runs in the page: fetches a URL with the session's cookie and answers its status, length
# and SHA-256, computed by the browser.
DIGEST = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
fetch(url).then(async r => {
  const buf = await r.arrayBuffer();
  const h = await crypto.subtle.digest('SHA-256', buf);
  done({status: r.status, length: buf.byteLength,
        sha256: Array.from(new Uint8Array(h)).map(b => b.toString(16).padStart(2, '0')).join(''),
        disposition: r.headers.get('content-disposition')});
}).catch(e => done({error: String(e)}));
"""


@pytest.fixture
def server(tmp_path):
    # Bucket usage sampled every second, for the chart of bytes stored.
    from conftest import Server
    data = tmp_path / "data"
    data.mkdir()
    s = Server(data, extra_args=["--usage-sample-seconds", "1"]).start()
    yield s
    s.stop()


def test_sign_in_upload_download_disable_key_and_audit(server, browser, tmp_path):
    base = server.endpoint + "/_coffer/console"
    page = tmp_path / "scan-2026.bin"
    data = os.urandom(20 * 1024 * 1024)
    page.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    # Signing in: a wrong secret is refused with STS's words; the right one opens a session.
    browser.get(base + "/")
    assert browser.current_url.endswith("/_coffer/console/sign-in")
    shot(browser, "01-sign-in")
    browser.find_element(By.ID, "access_key_id").send_keys(ACCESS_KEY)
    browser.find_element(By.ID, "secret_access_key").send_keys("not-the-secret")
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    assert "SignatureDoesNotMatch" in alert_text(browser)
    browser.find_element(By.ID, "access_key_id").send_keys(ACCESS_KEY)
    browser.find_element(By.ID, "secret_access_key").send_keys(SECRET_KEY)
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait(browser).until(EC.url_contains("/_coffer/console/buckets"))
    cookie = browser.get_cookie("coffer-console")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # The secret is kept by the server: nothing the page can read holds it.
    stored = browser.execute_script(
        "return document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert SECRET_KEY not in stored and SECRET_KEY not in browser.page_source

    # A key, created in the console.
    browser.get(base + "/keys")
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    browser.find_element(By.ID, "key-alias").send_keys("console-scans")
    browser.find_element(By.ID, "key-description").send_keys("scans of the console test")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/keys'] button").click()
    wait(browser).until(EC.url_matches(r".*/keys/[0-9a-f-]{36}$"))
    key_id = browser.current_url.rsplit("/", 1)[1]
    assert browser.find_element(By.CSS_SELECTOR, "dd.state").text == "Enabled"

    # A bucket whose default encryption is SSE-KMS under that key.
    browser.get(base + "/buckets")
    browser.find_element(By.ID, "bucket-name").send_keys("console-scans")
    browser.find_element(By.CSS_SELECTOR, "input[name=sse][value='aws:kms']").click()
    browser.find_element(By.ID, "kms-key").send_keys("alias/console-scans")
    shot(browser, "02-buckets-create")
    browser.find_element(By.CSS_SELECTOR, "form.create button").click()
    wait(browser).until(EC.url_contains("/buckets/console-scans"))
    enc = server.client().get_bucket_encryption(Bucket="console-scans")
    rule = enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms" and rule["KMSMasterKeyID"] == "alias/console-scans"

    # The upload: the progress bar reaches 100%.
    browser.find_element(By.ID, "upload-key").clear()
    browser.find_element(By.ID, "upload-key").send_keys("scans/")
    browser.find_element(By.ID, "upload-file").send_keys(str(page))
    browser.find_element(By.CSS_SELECTOR, "#upload button").click()
    wait(browser, 120).until(EC.presence_of_element_located((By.ID, "upload-done")))
    assert browser.find_element(By.ID, "upload-progress").get_attribute("value") == "100"
    assert browser.find_element(By.ID, "upload-status").text.startswith("100%")
    shot(browser, "03-uploaded")
    head = server.client().head_object(Bucket="console-scans", Key="scans/scan-2026.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"'), head["ETag"]  # three parts of at most 8 MiB
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(key_id)

    # The listing and the object's page.
    browser.get(base + "/buckets/console-scans?prefix=scans/")
    assert "scan-2026.bin" in browser.find_element(By.CSS_SELECTOR, "table.objects").text
    shot(browser, "04-objects")
    browser.find_element(By.LINK_TEXT, "scan-2026.bin").click()
    encryption = browser.find_element(By.CSS_SELECTOR, "dd.encryption").text
    assert "SSE-KMS" in encryption and key_id in encryption
    shot(browser, "05-object")

    # The download, byte for byte, as the browser receives it.
    url = base + "/buckets/console-scans/download?key=scans/scan-2026.bin"
    got = browser.execute_async_script(DIGEST, url)
    assert got.get("status") == 200, got
    assert got["length"] == len(data) and got["sha256"] == digest
    assert "attachment" in got["disposition"]

    # The key's page, then the impact report before disabling it: it counts the object.
    browser.get(base + "/keys/" + key_id)
    shot(browser, "06-key")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Disable key").click()
    report = browser.find_element(By.CSS_SELECTOR, "section.impact")
    assert browser.find_element(By.CSS_SELECTOR, ".impact .summary strong.objects").text == "1"
    row = [r.text for r in report.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(row) == 1 and row[0].startswith("console-scans 1 20.0 MiB yes"), row
    shot(browser, "07-impact-report")
    browser.find_element(By.CSS_SELECTOR, "form button.danger").click()
    assert "Key disabled." in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert browser.find_element(By.CSS_SELECTOR, "dd.state").text == "Disabled"
    shot(browser, "08-key-disabled")

    # The download now fails, with the KMS's reason.
    browser.get(url)
    failure = alert_text(browser)
    assert "KMS.DisabledException" in failure and key_id in failure, failure
    shot(browser, "09-download-refused")

    # Both calls are in the audit page, made by the console.
    for name, error in (("DisableKey", ""), ("GetObject", "KMS.DisabledException")):
        deadline = time.monotonic() + 30
        while True:
            browser.get(f"{base}/audit?attr=EventName&value={name}")
            rows = browser.find_elements(By.CSS_SELECTOR, "table.events tbody tr")
            hits = [r for r in rows
                    if r.find_element(By.CSS_SELECTOR, "td.agent").text.startswith("coffer-console/")
                    and r.find_element(By.CSS_SELECTOR, "td.errcode").text == error]
            if hits or time.monotonic() > deadline:
                break
        assert hits, f"no {name} by the console with error {error!r} in the audit page"
        shot(browser, f"10-audit-{name}")
    hits[0].find_element(By.CSS_SELECTOR, "td a").click()
    record = browser.find_element(By.CSS_SELECTOR, "pre.record").text
    assert '"errorCode": "KMS.DisabledException"' in record
    assert '"userAgent": "coffer-console/' in record
    shot(browser, "11-audit-event")

    # Identities: a user and an access key, whose secret is shown once.
    browser.get(base + "/identities")
    browser.find_element(By.ID, "new-user").send_keys("console-user")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/identities/users'] button").click()
    wait(browser).until(EC.url_contains("/identities/users/console-user"))
    browser.find_element(By.CSS_SELECTOR, "input[value=create-key] + button").click()
    secret = browser.find_element(By.CSS_SELECTOR, "code.secret").text
    key = browser.find_element(By.CSS_SELECTOR, "code.key-id").text
    assert len(secret) == 40 and key.startswith("AKIA")
    shot(browser, "12-identities-user")
    browser.get(base + "/identities/users/console-user")
    assert secret not in browser.page_source and key in browser.page_source
    browser.get(base + "/identities")
    assert "console-user" in browser.find_element(By.CSS_SELECTOR, "table.users").text
    shot(browser, "13-identities")

    # Usage: requests per operation, KMS calls per key, bytes stored per bucket.
    deadline = time.monotonic() + 30
    while True:
        browser.get(base + "/usage?range=24h")
        series = browser.find_elements(By.CSS_SELECTOR, "#stored polyline[data-name^='console-scans (']")
        if series or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert series, "no bytes-stored series for the bucket"
    bars = {b.get_attribute("data-name"): int(b.get_attribute("data-value"))
            for b in browser.find_elements(By.CSS_SELECTOR, "#operations rect.bar")}
    assert bars.get("kms:DisableKey") == 1 and bars.get("s3:CompleteMultipartUpload") == 1, bars
    assert bars.get("s3:UploadPart") == 3, bars
    keys = {b.get_attribute("data-name") for b in browser.find_elements(By.CSS_SELECTOR, "#kms-keys rect.bar")}
    assert key_id in keys, keys
    assert "20.0 MiB" in browser.find_element(By.CSS_SELECTOR, "#stored .legend").text
    shot(browser, "14-usage")

    # An HTML object served on the console's origin cannot act as the console: it runs
    # sandboxed, in an origin of its own, without the session's cookie.
    s3 = server.client()
    s3.put_object(Bucket="console-scans", Key="trap.html", ContentType="text/html", Body=TRAP,
                  ServerSideEncryption="AES256")  # the bucket's key is disabled now
    trap = s3.generate_presigned_url("get_object", Params={"Bucket": "console-scans", "Key": "trap.html"})
    browser.get(trap)
    wait(browser).until(lambda b: b.title in ("LEAK", "SAFE"))
    assert browser.title == "SAFE"
    browser.get(base + "/buckets")
    assert browser.current_url.endswith("/buckets")  # the session is still there

    # Everything the pages loaded came from the server itself.
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert set(origins) <= {server.endpoint}, origins

    # Signing out ends the session: the cookie no longer opens a page.
    browser.get(base + "/buckets")
    browser.find_element(By.CSS_SELECTOR, ".who button").click()
    wait(browser).until(EC.url_contains("/sign-in"))
    browser.get(base + "/buckets")
    assert browser.current_url.endswith("/sign-in")
