"""The built-in KMS through the stock aws CLI.

The CLI (v1) sends a blob parameter given as a plain string as its raw bytes, so binary
inputs go through files with fileb://.
"""

import base64
import os
import uuid

import pytest


@pytest.fixture(scope="module")
def srv(shared_server):
    return shared_server


def kms(srv, *args, **kw):
    return srv.aws("kms", *args, "--output", "json", expect_json=True, **kw)


@pytest.fixture(scope="module")
def key_id(srv):
    """One key shared by the tests that only use it."""
    return kms(srv, "create-key", "--description", "cli key")["KeyMetadata"]["KeyId"]


def test_create_and_describe_key(srv):
    created = kms(srv, "create-key", "--description", "made by the cli")["KeyMetadata"]
    assert created["KeyState"] == "Enabled"
    assert created["Description"] == "made by the cli"
    assert created["KeySpec"] == "SYMMETRIC_DEFAULT"
    for name in (created["KeyId"], created["Arn"]):
        got = kms(srv, "describe-key", "--key-id", name)["KeyMetadata"]
        assert got["KeyId"] == created["KeyId"]
        assert got["Arn"] == created["Arn"]


def test_list_keys_includes_new_keys(srv):
    new = kms(srv, "create-key")["KeyMetadata"]["KeyId"]
    listed = kms(srv, "list-keys")["Keys"]
    assert new in {k["KeyId"] for k in listed}
    # The CLI's own paginator follows NextMarker with a small page size.
    paged = kms(srv, "list-keys", "--page-size", "1")["Keys"]
    assert [k["KeyId"] for k in paged] == [k["KeyId"] for k in listed]


def test_create_alias_and_describe_by_alias(srv, key_id):
    alias = "alias/cli-" + uuid.uuid4().hex[:10]
    p = srv.aws("kms", "create-alias", "--alias-name", alias, "--target-key-id", key_id)
    assert p.stdout.strip() == ""
    assert kms(srv, "describe-key", "--key-id", alias)["KeyMetadata"]["KeyId"] == key_id
    aliases = kms(srv, "list-aliases", "--key-id", key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [alias]


def test_encrypt_and_decrypt_with_files(srv, key_id, tmp_path):
    plaintext = os.urandom(300)
    (tmp_path / "plain").write_bytes(plaintext)
    enc = kms(
        srv,
        "encrypt",
        "--key-id",
        key_id,
        "--plaintext",
        f"fileb://{tmp_path / 'plain'}",
        "--encryption-context",
        "purpose=cli,owner=test",
    )
    assert enc["KeyId"].endswith(":key/" + key_id)
    blob = base64.b64decode(enc["CiphertextBlob"])
    assert plaintext not in blob
    (tmp_path / "blob").write_bytes(blob)
    dec = kms(
        srv,
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{tmp_path / 'blob'}",
        "--encryption-context",
        "purpose=cli,owner=test",
    )
    assert base64.b64decode(dec["Plaintext"]) == plaintext
    assert dec["KeyId"] == enc["KeyId"]
    # Without the context the CLI reports the service's InvalidCiphertextException.
    p = srv.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}", check=False)
    assert p.returncode in (254, 255)
    assert "InvalidCiphertextException" in p.stderr


def test_generate_data_key_decrypts_to_its_plaintext(srv, key_id, tmp_path):
    r = kms(srv, "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256")
    plaintext = base64.b64decode(r["Plaintext"])
    assert len(plaintext) == 32
    (tmp_path / "dk").write_bytes(base64.b64decode(r["CiphertextBlob"]))
    dec = kms(srv, "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'dk'}")
    assert base64.b64decode(dec["Plaintext"]) == plaintext
    r = kms(srv, "generate-data-key", "--key-id", key_id, "--number-of-bytes", "17")
    assert len(base64.b64decode(r["Plaintext"])) == 17


def test_schedule_key_deletion(srv, tmp_path):
    key_id = kms(srv, "create-key")["KeyMetadata"]["KeyId"]
    r = kms(srv, "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert r["KeyId"].endswith(":key/" + key_id)
    assert r["KeyState"] == "PendingDeletion"
    assert r["PendingWindowInDays"] == 7
    m = kms(srv, "describe-key", "--key-id", key_id)["KeyMetadata"]
    assert m["KeyState"] == "PendingDeletion"
    assert m["Enabled"] is False
    assert "DeletionDate" in m
    (tmp_path / "p").write_bytes(b"too late")
    p = srv.aws("kms", "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{tmp_path / 'p'}", check=False)
    assert p.returncode in (254, 255)
    assert "KMSInvalidStateException" in p.stderr
    assert kms(srv, "cancel-key-deletion", "--key-id", key_id)["KeyId"].endswith(key_id)


def test_describe_missing_alias_fails_with_not_found(srv):
    p = srv.aws("kms", "describe-key", "--key-id", "alias/does-not-exist-" + uuid.uuid4().hex[:8], check=False)
    assert p.returncode in (254, 255), p
    assert "NotFoundException" in p.stderr
    assert p.stdout.strip() == ""
