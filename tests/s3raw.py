"""Raw, SigV4-signed HTTP requests for the cases boto3 will not send (malformed bodies,
virtual-hosted Host headers, skewed clocks). Signing is botocore's own SigV4Auth, so only
the request itself is hand-made."""

import hashlib
import http.client
import ssl
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from unittest import mock

import botocore.auth
import botocore.credentials
from botocore.awsrequest import AWSRequest

from conftest import ACCESS_KEY, REGION, SECRET_KEY

UNSIGNED = "UNSIGNED-PAYLOAD"


class _S3Auth(botocore.auth.SigV4Auth):
    """SigV4 for S3: the path is signed exactly as sent (no dot-segment normalisation)."""

    def _normalize_url_path(self, path):
        return path


def sign(method, url, headers=None, body=b"", payload_hash=None, when=None,
         access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """Returns the headers (with Authorization) for a request to `url`. `payload_hash` is
    the x-amz-content-sha256 value (default: sha256 of body); `when` a naive UTC datetime
    to sign with instead of now."""
    headers = dict(headers or {})
    headers["X-Amz-Content-SHA256"] = payload_hash or hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    auth = _S3Auth(botocore.credentials.Credentials(access_key, secret_key), "s3", REGION)
    if when is None:
        auth.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            auth.add_auth(req)
    return dict(req.headers.items())


def request(endpoint, method, path, body=b"", headers=None, payload_hash=None, when=None, host=None,
            access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """Sends one signed request; returns (status, headers dict lower-cased, body bytes).
    `path` includes any query string and must already be percent-encoded. `host` overrides
    the Host header (it is signed)."""
    u = urllib.parse.urlsplit(endpoint)
    headers = dict(headers or {})
    if host is not None:
        headers["Host"] = host
    signed = sign(method, endpoint.rstrip("/") + path, headers, body, payload_hash, when,
                  access_key=access_key, secret_key=secret_key)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl._create_unverified_context(), timeout=60)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=signed)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def error_code(body):
    """The <Code> of an S3 XML error body, or None."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    el = root.find("Code")
    return el.text if el is not None else None


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)
