"""The built-in KMS through boto3: every implemented operation, its main error cases and
its limits, against a real `coffer serve`.

Most tests share one server (module scope) and create their own keys; tests that need
to count every key of the account use a fresh server.
"""

import base64
import datetime
import json
import os
import urllib.error
import urllib.request
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Server

ONE_DAY = datetime.timedelta(days=1)


# ---------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def kms(shared_server):
    return shared_server.client("kms")


@pytest.fixture(scope="module")
def raw(shared_server):
    """A client that sends whatever it is given: limits are checked by the server."""
    return shared_server.client("kms", parameter_validation=False)


@pytest.fixture
def new_key(kms):
    def make(**kw):
        return kms.create_key(**kw)["KeyMetadata"]

    return make


@pytest.fixture
def key(new_key):
    return new_key(Description="a test key")


def expect_error(code, call, *args, **kw):
    """Runs `call`, which must fail with the AWS error `code` and HTTP status 400."""
    with pytest.raises(ClientError) as ei:
        call(*args, **kw)
    err = ei.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, err
    return err


def unique(prefix="alias/t-"):
    return prefix + uuid.uuid4().hex[:12]


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def assert_close(when, expected, tolerance=datetime.timedelta(minutes=10)):
    assert abs(when - expected) < tolerance, (when, expected)


def signed_call(server, operation, body, secret_key=SECRET_KEY):
    """Sends one SigV4-signed KMS JSON request by hand; returns (status, headers, body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = botocore.awsrequest.AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=data,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService." + operation,
        },
    )
    creds = botocore.credentials.Credentials(ACCESS_KEY, secret_key)
    botocore.auth.SigV4Auth(creds, "kms", REGION).add_auth(req)
    http = urllib.request.Request(
        server.endpoint + "/", data=data, method="POST", headers=dict(req.headers.items())
    )
    try:
        with urllib.request.urlopen(http) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# ---------------------------------------------------------------------------------------
# CreateKey


def test_create_key_returns_full_metadata(new_key):
    m = new_key(Description="my first key")
    assert m["Description"] == "my first key"
    assert m["KeyState"] == "Enabled"
    assert m["Enabled"] is True
    assert m["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert m["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert m["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert m["Origin"] == "AWS_KMS"
    assert m["KeyManager"] == "CUSTOMER"
    assert m["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert m["MultiRegion"] is False
    assert "DeletionDate" not in m
    account = m["AWSAccountId"]
    assert len(account) == 12 and account.isdigit()
    assert str(uuid.UUID(m["KeyId"])) == m["KeyId"]
    assert m["Arn"] == f"arn:aws:kms:{REGION}:{account}:key/{m['KeyId']}"
    assert_close(m["CreationDate"], now_utc())
    mid = m["CurrentKeyMaterialId"]
    assert len(mid) == 64 and all(c in "0123456789abcdef" for c in mid)


def test_create_key_ids_are_unique(new_key):
    ids = {new_key()["KeyId"] for _ in range(3)}
    assert len(ids) == 3


def test_create_key_with_tags_stores_them(kms, new_key):
    m = new_key(Tags=[{"TagKey": "team", "TagValue": "storage"}, {"TagKey": "env", "TagValue": ""}])
    tags = kms.list_resource_tags(KeyId=m["KeyId"])["Tags"]
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags) == [("env", ""), ("team", "storage")]


def test_create_key_default_policy_lets_the_account_root_do_everything(kms, new_key):
    m = new_key()
    account = m["AWSAccountId"]
    p = kms.get_key_policy(KeyId=m["KeyId"], PolicyName="default")
    policy = json.loads(p["Policy"])
    assert policy["Id"] == "key-default-1"
    assert policy["Version"] == "2012-10-17"
    [stmt] = policy["Statement"]
    assert stmt["Effect"] == "Allow"
    assert stmt["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
    assert stmt["Action"] == "kms:*"
    assert stmt["Resource"] == "*"
    assert f"arn:aws:iam::{account}:root" in p["Policy"]


def custom_policy(account, sid="Custom"):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "my-policy",
            "Statement": [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


def test_create_key_with_custom_policy_keeps_it(kms, key, new_key):
    policy = custom_policy(key["AWSAccountId"])
    m = new_key(Policy=policy)
    assert kms.get_key_policy(KeyId=m["KeyId"])["Policy"] == policy


@pytest.mark.parametrize(
    "policy",
    [
        "not json",
        "[]",
        '{"Version": "2012-10-17"}',
        '{"Version": "2012-10-17", "Statement": []}',
        '{"Version": "1999-01-01", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}',
    ],
)
def test_create_key_with_malformed_policy_is_refused(kms, policy):
    expect_error("MalformedPolicyDocumentException", kms.create_key, Policy=policy)


def test_create_key_sign_verify_needs_an_asymmetric_spec(kms):
    expect_error("ValidationException", kms.create_key, KeyUsage="SIGN_VERIFY")


def test_create_key_sm2_is_unsupported(kms):
    expect_error("UnsupportedOperationException", kms.create_key, KeySpec="SM2")


def test_create_key_unknown_spec_is_a_validation_error(raw):
    expect_error("ValidationException", raw.create_key, KeySpec="AES_999")


# ---------------------------------------------------------------------------------------
# the four ways to name a key


def key_names(kms, m):
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=m["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{m['AWSAccountId']}:{alias}"
    return {"key id": m["KeyId"], "key ARN": m["Arn"], "alias": alias, "alias ARN": alias_arn}


def test_describe_key_by_id_arn_alias_and_alias_arn(kms, key):
    for form, name in key_names(kms, key).items():
        got = kms.describe_key(KeyId=name)["KeyMetadata"]
        assert got["KeyId"] == key["KeyId"], form
        assert got["Arn"] == key["Arn"], form


def test_encrypt_by_id_arn_alias_and_alias_arn(kms, key):
    for form, name in key_names(kms, key).items():
        plaintext = f"named by {form}".encode()
        r = kms.encrypt(KeyId=name, Plaintext=plaintext)
        assert r["KeyId"] == key["Arn"], form
        assert r["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"])["Plaintext"] == plaintext


def test_unknown_key_is_not_found(kms, key):
    missing = str(uuid.uuid4())
    err = expect_error("NotFoundException", kms.describe_key, KeyId=missing)
    assert missing in err["Error"]["Message"]
    expect_error("NotFoundException", kms.encrypt, KeyId=missing, Plaintext=b"x")
    expect_error("NotFoundException", kms.enable_key, KeyId=missing)
    expect_error("NotFoundException", kms.get_key_policy, KeyId=missing, PolicyName="default")
    arn = f"arn:aws:kms:{REGION}:{key['AWSAccountId']}:key/{missing}"
    expect_error("NotFoundException", kms.describe_key, KeyId=arn)
    expect_error("NotFoundException", kms.describe_key, KeyId=unique())
    expect_error("NotFoundException", kms.encrypt, KeyId=unique(), Plaintext=b"x")


def test_key_arn_of_another_account_is_not_found(kms, key):
    other = "000000000000" if key["AWSAccountId"] != "000000000000" else "111111111111"
    expect_error(
        "NotFoundException", kms.describe_key, KeyId=f"arn:aws:kms:{REGION}:{other}:key/{key['KeyId']}"
    )


# ---------------------------------------------------------------------------------------
# ListKeys (on a server of its own, so the account's keys are exactly those created here)


@pytest.fixture(scope="module")
def lonely_server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("kms-list")).start()
    yield s
    s.stop()


def test_list_keys_pages_with_limit_and_marker(lonely_server):
    k = lonely_server.client("kms")
    created = {k.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    seen, sizes, marker = [], [], None
    while True:
        kw = {"Limit": 3}
        if marker:
            kw["Marker"] = marker
        page = k.list_keys(**kw)
        sizes.append(len(page["Keys"]))
        for entry in page["Keys"]:
            assert entry["KeyArn"].endswith(":key/" + entry["KeyId"])
            seen.append(entry["KeyId"])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
        assert len(sizes) < 10, "ListKeys never stops"
    assert sizes == [3, 3, 1]
    assert len(seen) == len(set(seen))
    assert set(seen) == created
    everything = k.list_keys()
    assert everything["Truncated"] is False
    assert {e["KeyId"] for e in everything["Keys"]} == created


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_keys_limit_out_of_range_is_refused(raw, limit):
    expect_error("ValidationException", raw.list_keys, Limit=limit)


@pytest.mark.parametrize(
    "op,limit", [("list_aliases", 0), ("list_aliases", 101), ("list_resource_tags", 51), ("list_key_rotations", 1001)]
)
def test_other_list_limits_out_of_range_are_refused(raw, key, op, limit):
    kw = {} if op == "list_aliases" else {"KeyId": key["KeyId"]}
    expect_error("ValidationException", getattr(raw, op), Limit=limit, **kw)


def test_list_keys_garbage_marker_is_refused(kms):
    expect_error("InvalidMarkerException", kms.list_keys, Marker="not-a-marker")


# ---------------------------------------------------------------------------------------
# EnableKey / DisableKey / UpdateKeyDescription


def test_disable_and_enable_key(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    m = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (m["KeyState"], m["Enabled"]) == ("Disabled", False)
    kms.enable_key(KeyId=key["KeyId"])
    m = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (m["KeyState"], m["Enabled"]) == ("Enabled", True)
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"works again")


def test_disabled_key_refuses_cryptographic_operations(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    err = expect_error("DisabledException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert key["Arn"] in err["Error"]["Message"]
    expect_error("DisabledException", kms.decrypt, CiphertextBlob=blob)
    expect_error("DisabledException", kms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256")
    expect_error(
        "DisabledException", kms.generate_data_key_without_plaintext, KeyId=key["KeyId"], KeySpec="AES_256"
    )
    expect_error("DisabledException", kms.enable_key_rotation, KeyId=key["KeyId"])
    expect_error("DisabledException", kms.rotate_key_on_demand, KeyId=key["KeyId"])
    expect_error("DisabledException", kms.disable_key_rotation, KeyId=key["KeyId"])
    # Management still works on a disabled key.
    kms.update_key_description(KeyId=key["KeyId"], Description="disabled")
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "k", "TagValue": "v"}])
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_update_key_description(kms, key):
    kms.update_key_description(KeyId=key["KeyId"], Description="new words")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "new words"
    kms.update_key_description(KeyId=key["Arn"], Description="")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == ""


# ---------------------------------------------------------------------------------------
# ScheduleKeyDeletion / CancelKeyDeletion


def test_schedule_key_deletion_defaults_to_30_days(kms, key):
    before = now_utc()
    r = kms.schedule_key_deletion(KeyId=key["KeyId"])
    assert r["KeyId"] == key["Arn"]
    assert r["KeyState"] == "PendingDeletion"
    assert r["PendingWindowInDays"] == 30
    assert_close(r["DeletionDate"], before + 30 * ONE_DAY)
    m = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert m["KeyState"] == "PendingDeletion"
    assert m["Enabled"] is False
    assert m["DeletionDate"] == r["DeletionDate"]
    assert m["PendingDeletionWindowInDays"] == 30


def test_schedule_key_deletion_with_a_7_day_window(kms, key):
    before = now_utc()
    r = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert r["PendingWindowInDays"] == 7
    assert_close(r["DeletionDate"], before + 7 * ONE_DAY)
    m = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert_close(m["DeletionDate"], before + 7 * ONE_DAY)


@pytest.mark.parametrize("days", [6, 31, 0])
def test_schedule_key_deletion_window_outside_7_to_30_is_refused(raw, kms, key, days):
    expect_error("ValidationException", raw.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=days)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_disabled_key_can_be_scheduled_for_deletion(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    assert kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)["KeyState"] == "PendingDeletion"


def test_cancel_key_deletion_leaves_the_key_disabled(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    r = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert r["KeyId"] == key["Arn"]
    m = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert m["KeyState"] == "Disabled"
    assert m["Enabled"] is False
    assert "DeletionDate" not in m
    assert "PendingDeletionWindowInDays" not in m


def test_cancel_key_deletion_of_a_key_not_pending_is_invalid_state(kms, key):
    err = expect_error("KMSInvalidStateException", kms.cancel_key_deletion, KeyId=key["KeyId"])
    assert "not pending deletion" in err["Error"]["Message"]


def test_key_pending_deletion_refuses_use_and_most_changes(kms, key):
    kid = key["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"before")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=kid)
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    refused = [
        (kms.encrypt, dict(KeyId=kid, Plaintext=b"x")),
        (kms.decrypt, dict(CiphertextBlob=blob)),
        (kms.generate_data_key, dict(KeyId=kid, KeySpec="AES_256")),
        (kms.generate_data_key_without_plaintext, dict(KeyId=kid, KeySpec="AES_256")),
        (kms.enable_key, dict(KeyId=kid)),
        (kms.disable_key, dict(KeyId=kid)),
        (kms.update_key_description, dict(KeyId=kid, Description="x")),
        (kms.tag_resource, dict(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}])),
        (kms.untag_resource, dict(KeyId=kid, TagKeys=["a"])),
        (kms.create_alias, dict(AliasName=unique(), TargetKeyId=kid)),
        (kms.update_alias, dict(AliasName=alias, TargetKeyId=kid)),
        (kms.schedule_key_deletion, dict(KeyId=kid)),
        (kms.enable_key_rotation, dict(KeyId=kid)),
        (kms.disable_key_rotation, dict(KeyId=kid)),
        (kms.rotate_key_on_demand, dict(KeyId=kid)),
    ]
    for call, kw in refused:
        err = expect_error("KMSInvalidStateException", call, **kw)
        assert "pending deletion" in err["Error"]["Message"], call
    # Reading still works; rotation reads as off while pending deletion.
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.get_key_policy(KeyId=kid, PolicyName="default")
    kms.list_resource_tags(KeyId=kid)
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    kms.delete_alias(AliasName=alias)
    # Cancelling restores the rotation setting and allows use after enabling.
    kms.cancel_key_deletion(KeyId=kid)
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is True
    kms.enable_key(KeyId=kid)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"


# ---------------------------------------------------------------------------------------
# GetKeyLastUsage


def test_get_key_last_usage_reports_the_last_cryptographic_operation(kms, key):
    r = kms.get_key_last_usage(KeyId=key["KeyId"])
    assert r["KeyId"] == key["Arn"]
    assert "KeyLastUsage" not in r
    assert r["KeyCreationDate"] == key["CreationDate"]
    assert r["TrackingStartDate"] == key["CreationDate"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"used")["CiphertextBlob"]
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "Encrypt"
    assert_close(usage["Timestamp"], now_utc())
    kms.decrypt(CiphertextBlob=blob)
    assert kms.get_key_last_usage(KeyId=key["Arn"])["KeyLastUsage"]["Operation"] == "Decrypt"


def test_get_key_last_usage_ignores_management_operations(kms, key):
    kms.update_key_description(KeyId=key["KeyId"], Description="changed")
    kms.describe_key(KeyId=key["KeyId"])
    assert "KeyLastUsage" not in kms.get_key_last_usage(KeyId=key["KeyId"])


# ---------------------------------------------------------------------------------------
# Encrypt / Decrypt


def test_encrypt_decrypt_roundtrip(kms, key):
    plaintext = os.urandom(100)
    r = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)
    assert plaintext not in r["CiphertextBlob"]
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"])
    assert d["Plaintext"] == plaintext
    assert d["KeyId"] == key["Arn"]
    assert d["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert d["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    # Encryption is randomised: the same plaintext twice gives two blobs.
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)["CiphertextBlob"] != r["CiphertextBlob"]


def test_decrypt_needs_the_same_encryption_context(kms, key):
    ctx = {"purpose": "test", "bucket": "b1"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext=ctx)["CiphertextBlob"]
    # Order does not matter.
    same = {"bucket": "b1", "purpose": "test"}
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=same)["Plaintext"] == b"ctx"
    for wrong in [{}, {"purpose": "test"}, {"purpose": "test", "bucket": "b2"}, {**ctx, "extra": "1"}]:
        kw = {"EncryptionContext": wrong} if wrong else {}
        expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, **kw)
    plain = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"no ctx")["CiphertextBlob"]
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=plain, EncryptionContext={"a": "b"})


def test_decrypt_with_the_key_id_of_another_key_is_incorrect_key(kms, key, new_key):
    other = new_key()
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, KeyId=other["KeyId"])
    expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, KeyId=other["Arn"])
    assert kms.decrypt(CiphertextBlob=blob, KeyId=key["KeyId"])["Plaintext"] == b"mine"
    assert kms.decrypt(CiphertextBlob=blob, KeyId=key["Arn"])["Plaintext"] == b"mine"


def test_decrypt_of_a_tampered_ciphertext_is_invalid(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"tamper with me")["CiphertextBlob"]
    n = len(blob)
    for pos in sorted({0, 1, 16, 17, 20, 21, 32, 33, n // 2, n - 16, n - 1}):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=bytes(bad))
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"tamper with me"


@pytest.mark.parametrize("name", ["garbage", "random", "truncated", "extended", "one byte"])
def test_decrypt_of_garbage_is_invalid_ciphertext(kms, key, name):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x" * 10)["CiphertextBlob"]
    bad = {
        "garbage": b"garbage",
        "random": os.urandom(200),
        "truncated": blob[:-1],
        "extended": blob + b"\0",
        "one byte": b"\x01",
    }[name]
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=bad)


def test_plaintext_size_limit_is_4096_bytes(kms, raw, key):
    big = os.urandom(4096)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=big)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == big
    expect_error("ValidationException", raw.encrypt, KeyId=key["KeyId"], Plaintext=big + b"!")
    expect_error("ValidationException", raw.encrypt, KeyId=key["KeyId"], Plaintext=b"")


def test_encrypt_with_an_asymmetric_algorithm_is_invalid_key_usage(kms, key):
    expect_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_ciphertext_of_another_key_cannot_be_decrypted_as_this_one(kms, key, new_key):
    """The key is found from the blob: a blob of key A says A, whatever A's alias says."""
    other = new_key()
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=other["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"a")["CiphertextBlob"]
    expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, KeyId=alias)


# ---------------------------------------------------------------------------------------
# ReEncrypt


def test_reencrypt_to_another_key_and_back(kms, key, new_key):
    other = new_key()
    c1, c2 = {"stage": "one"}, {"stage": "two"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"moving", EncryptionContext=c1)["CiphertextBlob"]
    r = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=c1,
        DestinationKeyId=other["KeyId"],
        DestinationEncryptionContext=c2,
    )
    assert r["SourceKeyId"] == key["Arn"]
    assert r["KeyId"] == other["Arn"]
    assert r["SourceEncryptionAlgorithm"] == r["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    moved = r["CiphertextBlob"]
    d = kms.decrypt(CiphertextBlob=moved, EncryptionContext=c2)
    assert (d["Plaintext"], d["KeyId"]) == (b"moving", other["Arn"])
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=moved, EncryptionContext=c1)
    expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=moved, KeyId=key["KeyId"])
    # Wrong source context, or the wrong source key named, is refused.
    expect_error(
        "InvalidCiphertextException",
        kms.re_encrypt,
        CiphertextBlob=moved,
        SourceEncryptionContext=c1,
        DestinationKeyId=key["KeyId"],
    )
    expect_error(
        "IncorrectKeyException",
        kms.re_encrypt,
        CiphertextBlob=moved,
        SourceEncryptionContext=c2,
        SourceKeyId=key["KeyId"],
        DestinationKeyId=key["KeyId"],
    )
    back = kms.re_encrypt(
        CiphertextBlob=moved,
        SourceEncryptionContext=c2,
        SourceKeyId=other["Arn"],
        DestinationKeyId=key["Arn"],
    )
    assert back["SourceKeyId"] == other["Arn"] and back["KeyId"] == key["Arn"]
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"moving"


def test_reencrypt_to_a_disabled_key_is_refused(kms, key, new_key):
    other = new_key()
    kms.disable_key(KeyId=other["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error("DisabledException", kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=other["KeyId"])


# ---------------------------------------------------------------------------------------
# GenerateDataKey / GenerateDataKeyWithoutPlaintext


@pytest.mark.parametrize(
    "kw,length",
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
def test_generate_data_key_sizes(kms, key, kw, length):
    r = kms.generate_data_key(KeyId=key["KeyId"], **kw)
    assert len(r["Plaintext"]) == length
    assert r["KeyId"] == key["Arn"]
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"])
    assert d["Plaintext"] == r["Plaintext"]


def test_generate_data_key_with_context_decrypts_only_with_it(kms, key):
    ctx = {"object": "photo.jpg"}
    r = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == r["Plaintext"]
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=r["CiphertextBlob"])
    other = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert other["Plaintext"] != r["Plaintext"]


@pytest.mark.parametrize(
    "kw",
    [
        {"NumberOfBytes": 0},
        {"NumberOfBytes": 1025},
        {"NumberOfBytes": 32, "KeySpec": "AES_256"},
        {},
        {"KeySpec": "AES_512"},
    ],
    ids=["0 bytes", "1025 bytes", "both", "neither", "bad spec"],
)
def test_generate_data_key_size_errors(raw, key, kw):
    expect_error("ValidationException", raw.generate_data_key, KeyId=key["KeyId"], **kw)
    expect_error("ValidationException", raw.generate_data_key_without_plaintext, KeyId=key["KeyId"], **kw)


def test_generate_data_key_without_plaintext(kms, key):
    r = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"a": "b"})
    assert "Plaintext" not in r
    assert r["KeyId"] == key["Arn"]
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert len(d["Plaintext"]) == 32
    r = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=7)
    assert len(kms.decrypt(CiphertextBlob=r["CiphertextBlob"])["Plaintext"]) == 7


# ---------------------------------------------------------------------------------------
# GenerateRandom


@pytest.mark.parametrize("n", [1, 32, 1024])
def test_generate_random_lengths(kms, n):
    assert len(kms.generate_random(NumberOfBytes=n)["Plaintext"]) == n


def test_generate_random_differs_between_calls(kms):
    a = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert a != b


@pytest.mark.parametrize("kw", [{"NumberOfBytes": 0}, {"NumberOfBytes": 1025}, {}], ids=["0", "1025", "missing"])
def test_generate_random_out_of_range_is_refused(raw, kw):
    expect_error("ValidationException", raw.generate_random, **kw)


# ---------------------------------------------------------------------------------------
# automatic rotation settings


def test_rotation_is_off_for_a_new_key(kms, key):
    r = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert r["KeyRotationEnabled"] is False
    assert "NextRotationDate" not in r


@pytest.mark.parametrize("period", [None, 90, 2560])
def test_enable_key_rotation_sets_period_and_next_date(kms, key, period):
    before = now_utc()
    kw = {} if period is None else {"RotationPeriodInDays": period}
    kms.enable_key_rotation(KeyId=key["KeyId"], **kw)
    r = kms.get_key_rotation_status(KeyId=key["KeyId"])
    days = period or 365
    assert r["KeyRotationEnabled"] is True
    assert r["RotationPeriodInDays"] == days
    assert_close(r["NextRotationDate"], before + days * ONE_DAY)
    assert r["KeyId"] == key["Arn"]


def test_enable_key_rotation_again_changes_the_period(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=400)
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=100)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["RotationPeriodInDays"] == 100


@pytest.mark.parametrize("period", [89, 2561, 0])
def test_rotation_period_outside_90_to_2560_is_refused(raw, kms, key, period):
    expect_error("ValidationException", raw.enable_key_rotation, KeyId=key["KeyId"], RotationPeriodInDays=period)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_disable_key_rotation(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=120)
    kms.disable_key_rotation(KeyId=key["KeyId"])
    r = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert r["KeyRotationEnabled"] is False
    assert "NextRotationDate" not in r


# ---------------------------------------------------------------------------------------
# on-demand rotation and ListKeyRotations


def test_rotate_on_demand_keeps_old_ciphertexts_readable(kms, key):
    original = key["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"old")["CiphertextBlob"]
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []
    r = kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert r["KeyId"] == key["Arn"]
    current = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    assert current != original
    d_old = kms.decrypt(CiphertextBlob=old)
    assert (d_old["Plaintext"], d_old["KeyMaterialId"]) == (b"old", original)
    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"new")["CiphertextBlob"]
    d_new = kms.decrypt(CiphertextBlob=new)
    assert (d_new["Plaintext"], d_new["KeyMaterialId"]) == (b"new", current)

    [rot] = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert rot["RotationType"] == "ON_DEMAND"
    assert rot["KeyId"] == key["Arn"]
    assert rot["KeyMaterialId"] == current
    assert rot["KeyMaterialState"] == "CURRENT"
    assert_close(rot["RotationDate"], now_utc())

    everything = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [e["KeyMaterialId"] for e in everything] == [original, current]
    first = everything[0]
    assert first["KeyMaterialState"] == "NON_CURRENT"
    assert "RotationType" not in first
    only = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ROTATIONS_ONLY")["Rotations"]
    assert [e["KeyMaterialId"] for e in only] == [current]


def test_rotate_on_demand_does_not_change_the_automatic_schedule(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=180)
    before = kms.get_key_rotation_status(KeyId=key["KeyId"])
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    after = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert after["NextRotationDate"] == before["NextRotationDate"]
    assert after["RotationPeriodInDays"] == 180


def test_rotate_on_demand_is_limited_to_25_rotations(kms, key):
    blobs = [kms.encrypt(KeyId=key["KeyId"], Plaintext=b"v0")["CiphertextBlob"]]
    for i in range(25):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
        if i % 8 == 0:
            blobs.append(kms.encrypt(KeyId=key["KeyId"], Plaintext=f"v{i + 1}".encode())["CiphertextBlob"])
    expect_error("LimitExceededException", kms.rotate_key_on_demand, KeyId=key["KeyId"])
    rotations = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert len(rotations) == 25
    assert all(r["RotationType"] == "ON_DEMAND" for r in rotations)
    assert [r["KeyMaterialState"] for r in rotations].count("CURRENT") == 1
    assert rotations[-1]["KeyMaterialState"] == "CURRENT"
    assert len({r["KeyMaterialId"] for r in rotations}) == 25
    for b in blobs:
        kms.decrypt(CiphertextBlob=b)
    # Paging: 25 rotations, 10 at a time.
    sizes, seen, marker = [], [], None
    while True:
        kw = {"KeyId": key["KeyId"], "Limit": 10}
        if marker:
            kw["Marker"] = marker
        page = kms.list_key_rotations(**kw)
        sizes.append(len(page["Rotations"]))
        seen += [r["KeyMaterialId"] for r in page["Rotations"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
        assert len(sizes) < 10
    assert sizes == [10, 10, 5]
    assert seen == [r["KeyMaterialId"] for r in rotations]


# ---------------------------------------------------------------------------------------
# aliases


def list_all_aliases(kms, **kw):
    out, marker = [], None
    while True:
        if marker:
            kw["Marker"] = marker
        page = kms.list_aliases(**kw)
        out += page["Aliases"]
        if not page["Truncated"]:
            return out
        marker = page["NextMarker"]


def test_create_alias_and_list_aliases_by_key(kms, key, new_key):
    other = new_key()
    a1, a2, a3 = unique(), unique(), unique()
    kms.create_alias(AliasName=a1, TargetKeyId=key["KeyId"])
    kms.create_alias(AliasName=a2, TargetKeyId=key["Arn"])
    kms.create_alias(AliasName=a3, TargetKeyId=other["KeyId"])
    mine = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert sorted(a["AliasName"] for a in mine) == sorted([a1, a2])
    for a in mine:
        assert a["TargetKeyId"] == key["KeyId"]
        assert a["AliasArn"] == f"arn:aws:kms:{REGION}:{key['AWSAccountId']}:{a['AliasName']}"
        assert_close(a["CreationDate"], now_utc())
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=other["Arn"])["Aliases"]] == [a3]
    names = [a["AliasName"] for a in list_all_aliases(kms)]
    assert {a1, a2, a3} <= set(names)
    assert names == sorted(names)


def test_list_aliases_pages(kms, key):
    created = sorted(unique() for _ in range(5))
    for a in created:
        kms.create_alias(AliasName=a, TargetKeyId=key["KeyId"])
    page = kms.list_aliases(KeyId=key["KeyId"], Limit=2)
    assert page["Truncated"] is True and len(page["Aliases"]) == 2
    assert [a["AliasName"] for a in list_all_aliases(kms, KeyId=key["KeyId"], Limit=2)] == created


def test_create_alias_that_exists_is_already_exists(kms, key, new_key):
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    err = expect_error("AlreadyExistsException", kms.create_alias, AliasName=alias, TargetKeyId=new_key()["KeyId"])
    assert alias in err["Error"]["Message"]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_alias_aws_prefix_is_reserved(kms, key):
    expect_error("NotAuthorizedException", kms.create_alias, AliasName="alias/aws/s3", TargetKeyId=key["KeyId"])
    expect_error("NotAuthorizedException", kms.create_alias, AliasName=unique("alias/aws/x"), TargetKeyId=key["KeyId"])


def test_alias_name_without_prefix_is_invalid(kms, key):
    # botocore does not check the pattern, so this is the server's answer: AWS was observed
    # to answer a missing prefix with ValidationException, other bad names with
    # InvalidAliasNameException.
    expect_error("ValidationException", kms.create_alias, AliasName="my-key", TargetKeyId=key["KeyId"])
    expect_error("InvalidAliasNameException", kms.create_alias, AliasName="alias/bad name", TargetKeyId=key["KeyId"])


def test_create_alias_for_missing_key_is_not_found(kms):
    expect_error("NotFoundException", kms.create_alias, AliasName=unique(), TargetKeyId=str(uuid.uuid4()))


def test_update_alias_points_it_at_another_key(kms, key, new_key):
    other = new_key()
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.update_alias(AliasName=alias, TargetKeyId=other["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == other["KeyId"]
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    [a] = kms.list_aliases(KeyId=other["KeyId"])["Aliases"]
    assert a["AliasName"] == alias
    assert a["LastUpdatedDate"] >= a["CreationDate"]
    assert kms.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == other["Arn"]


def test_update_missing_alias_is_not_found(kms, key):
    expect_error("NotFoundException", kms.update_alias, AliasName=unique(), TargetKeyId=key["KeyId"])


def test_delete_alias(kms, key):
    alias = unique()
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName=alias)
    expect_error("NotFoundException", kms.describe_key, KeyId=alias)
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    expect_error("NotFoundException", kms.delete_alias, AliasName=alias)
    # The name is free again.
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_delete_missing_alias_is_not_found(kms):
    expect_error("NotFoundException", kms.delete_alias, AliasName=unique())


# ---------------------------------------------------------------------------------------
# tags


def tags_of(kms, key_id):
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}


def test_tag_untag_and_list_resource_tags(kms, key):
    kid = key["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    assert tags_of(kms, kid) == {"a": "1", "b": "2"}
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "a", "TagValue": "changed"}])
    assert tags_of(kms, kid) == {"a": "changed", "b": "2"}
    kms.untag_resource(KeyId=kid, TagKeys=["b", "not-there"])
    assert tags_of(kms, kid) == {"a": "changed"}


def test_list_resource_tags_pages(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": f"k{i}", "TagValue": str(i)} for i in range(5)])
    page = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2)
    assert page["Truncated"] is True and len(page["Tags"]) == 2
    got = [t["TagKey"] for t in page["Tags"]]
    while page["Truncated"]:
        page = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2, Marker=page["NextMarker"])
        got += [t["TagKey"] for t in page["Tags"]]
    assert got == [f"k{i}" for i in range(5)]


def test_tag_key_with_aws_prefix_is_refused(kms, key, new_key):
    expect_error("TagException", kms.tag_resource, KeyId=key["KeyId"], Tags=[{"TagKey": "aws:owner", "TagValue": "x"}])
    expect_error("TagException", new_key, Tags=[{"TagKey": "aws:owner", "TagValue": "x"}])
    assert tags_of(kms, key["KeyId"]) == {}


def test_more_than_50_tags_are_refused(kms, key, new_key):
    fifty_one = [{"TagKey": f"t{i}", "TagValue": "v"} for i in range(51)]
    expect_error("TagException", kms.tag_resource, KeyId=key["KeyId"], Tags=fifty_one)
    expect_error("TagException", new_key, Tags=fifty_one)
    assert tags_of(kms, key["KeyId"]) == {}
    kms.tag_resource(KeyId=key["KeyId"], Tags=fifty_one[:50])
    assert len(tags_of(kms, key["KeyId"])) == 50
    expect_error("TagException", kms.tag_resource, KeyId=key["KeyId"], Tags=fifty_one[50:])
    # Replacing an existing tag's value is not a 51st tag.
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t0", "TagValue": "new"}])
    assert tags_of(kms, key["KeyId"])["t0"] == "new"


def test_over_long_tag_key_is_a_validation_error(raw, key):
    expect_error("ValidationException", raw.tag_resource, KeyId=key["KeyId"], Tags=[{"TagKey": "k" * 129, "TagValue": "v"}])


# ---------------------------------------------------------------------------------------
# key policies


def test_put_and_get_key_policy(kms, key):
    policy = custom_policy(key["AWSAccountId"], sid="Replaced")
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == policy
    assert kms.get_key_policy(KeyId=key["Arn"])["Policy"] == policy


def test_list_key_policies_lists_only_default(kms, key):
    r = kms.list_key_policies(KeyId=key["KeyId"])
    assert r["PolicyNames"] == ["default"]
    assert r["Truncated"] is False


def test_policy_name_other_than_default_is_not_found(kms, key):
    expect_error("NotFoundException", kms.get_key_policy, KeyId=key["KeyId"], PolicyName="custom")
    expect_error(
        "NotFoundException",
        kms.put_key_policy,
        KeyId=key["KeyId"],
        PolicyName="custom",
        Policy=custom_policy(key["AWSAccountId"]),
    )


def test_put_malformed_key_policy_is_refused_and_keeps_the_old_one(kms, key):
    old = kms.get_key_policy(KeyId=key["KeyId"])["Policy"]
    expect_error("MalformedPolicyDocumentException", kms.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy="{")
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == old


# ---------------------------------------------------------------------------------------
# authentication and the error wire format


def test_wrong_secret_is_invalid_signature(shared_server):
    bad = shared_server.client("kms", secret_key="not-the-secret")
    expect_error("InvalidSignatureException", bad.list_keys)
    expect_error("InvalidSignatureException", bad.create_key)


def test_unknown_access_key_is_unrecognized_client(shared_server):
    bad = shared_server.client("kms", access_key="AKIANOTAKNOWNKEY0000")
    expect_error("UnrecognizedClientException", bad.list_keys)


def test_errors_are_json_with_type_and_status_400(shared_server, key):
    cases = [
        ("DescribeKey", {"KeyId": str(uuid.uuid4())}, "NotFoundException"),
        ("Decrypt", {"CiphertextBlob": base64.b64encode(b"garbage").decode()}, "InvalidCiphertextException"),
        ("CreateKey", {"Policy": "nope"}, "MalformedPolicyDocumentException"),
        ("GenerateRandom", {"NumberOfBytes": 5000}, "ValidationException"),
        ("ListKeys", {"Limit": 0}, "ValidationException"),
        ("CancelKeyDeletion", {"KeyId": key["KeyId"]}, "KMSInvalidStateException"),
        ("Frobnicate", {}, "UnknownOperationException"),
    ]
    for op, body, code in cases:
        status, headers, raw_body = signed_call(shared_server, op, body)
        assert status == 400, (op, status, raw_body)
        doc = json.loads(raw_body)
        assert doc["__type"] == code, (op, doc)
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        assert "json" in ctype, (op, ctype)
    # AWS sends InvalidCiphertextException without a message.
    _, _, raw_body = signed_call(
        shared_server, "Decrypt", {"CiphertextBlob": base64.b64encode(b"garbage").decode()}
    )
    assert json.loads(raw_body) == {"__type": "InvalidCiphertextException"}
    status, _, raw_body = signed_call(shared_server, "ListKeys", {}, secret_key="wrong")
    assert status == 400 and json.loads(raw_body)["__type"] == "InvalidSignatureException"


def test_missing_required_field_is_a_validation_error(shared_server):
    status, _, raw_body = signed_call(shared_server, "DescribeKey", {})
    assert status == 400
    assert json.loads(raw_body)["__type"] == "ValidationException"


def test_success_responses_are_json(shared_server, key):
    status, headers, raw_body = signed_call(shared_server, "DescribeKey", {"KeyId": key["KeyId"]})
    assert status == 200
    assert json.loads(raw_body)["KeyMetadata"]["KeyId"] == key["KeyId"]
