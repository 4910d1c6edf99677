"""Terraform's AWS provider (from the machine's local mirror) managing keys and bucket
encryption as code against Coffer: a bring-your-own-key `aws_kms_external_key` (the
provider runs GetParametersForImport and ImportKeyMaterial itself), ECC signing and HMAC
keys, a bucket whose default encryption is the imported key, a versioned bucket
(`aws_s3_bucket_versioning`) and an Object Lock bucket with a default retention
(`object_lock_enabled`, `aws_s3_bucket_object_lock_configuration`) with lifecycle rules
(`aws_s3_bucket_lifecycle_configuration`). A second plan must show no drift, and destroy must schedule
the keys' deletion."""

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ACCESS_KEY, SECRET_KEY

PLUGINS = Path(os.environ.get("COFFER_TF_PLUGIN_DIR", "/opt/tf-plugins"))

pytestmark = pytest.mark.skipif(
    shutil.which("terraform") is None or not (PLUGINS / "registry.terraform.io/hashicorp/aws").is_dir(),
    reason="terraform and a local mirror of hashicorp/aws are not installed here",
)

CONFIG = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "%(access)s"
  secret_key                  = "%(secret)s"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {
    kms = "%(endpoint)s"
    s3  = "%(endpoint)s"
    sts = "%(endpoint)s"
    iam = "%(endpoint)s"
  }
}
variable "material" {
  type      = string
  sensitive = true
}
resource "aws_kms_external_key" "byok" {
  description             = "brought my own key"
  key_material_base64     = var.material
  enabled                 = true
  deletion_window_in_days = 7
}
resource "aws_kms_key" "signing" {
  description              = "signing"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 7
}
resource "aws_kms_key" "mac" {
  customer_master_key_spec = "HMAC_256"
  key_usage                = "GENERATE_VERIFY_MAC"
  deletion_window_in_days  = 7
}
resource "aws_s3_bucket" "b" {
  bucket = "tf-byok"
}
resource "aws_s3_bucket_server_side_encryption_configuration" "b" {
  bucket = aws_s3_bucket.b.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_external_key.byok.arn
    }
  }
}
resource "aws_s3_bucket" "v" {
  bucket = "tf-versioned"
}
resource "aws_s3_bucket_versioning" "v" {
  bucket = aws_s3_bucket.v.id
  versioning_configuration {
    status = "Enabled"
  }
}
resource "aws_s3_bucket" "worm" {
  bucket              = "tf-worm"
  object_lock_enabled = true
}
resource "aws_s3_bucket_object_lock_configuration" "worm" {
  bucket = aws_s3_bucket.worm.id
  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = 1
    }
  }
}
resource "aws_s3_bucket_lifecycle_configuration" "v" {
  bucket = aws_s3_bucket.v.id
  depends_on = [aws_s3_bucket_versioning.v]
  rule {
    id     = "logs"
    status = "Enabled"
    filter {
      prefix = "logs/"
    }
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days           = 7
      newer_noncurrent_versions = 3
    }
    transition {
      days          = 10
      storage_class = "GLACIER"
    }
  }
  rule {
    id     = "uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
  rule {
    id     = "tagged"
    status = "Disabled"
    filter {
      and {
        prefix = "tmp/"
        tags = {
          class = "scratch"
        }
        object_size_greater_than = 1024
      }
    }
    expiration {
      days = 1
    }
  }
}
output "byok" { value = aws_kms_external_key.byok.id }
output "signing" { value = aws_kms_key.signing.id }
output "mac" { value = aws_kms_key.mac.id }
"""


def test_terraform_manages_imported_keys_and_bucket_encryption(shared_server, tmp_path):
    srv = shared_server
    (tmp_path / "main.tf").write_text(CONFIG % dict(access=ACCESS_KEY, secret=SECRET_KEY,
                                                    endpoint=srv.endpoint))
    material = os.urandom(32)
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
               TF_VAR_material=base64.b64encode(material).decode())

    def tf(*args, ok=(0,)):
        p = subprocess.run(["terraform", *args, "-no-color"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode in ok, f"terraform {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    tf("init", f"-plugin-dir={PLUGINS}")
    tf("apply", "-auto-approve")
    out = {k: tf("output", "-raw", k).stdout for k in ("byok", "signing", "mac")}

    kms, s3 = srv.client("kms"), srv.client("s3")
    m = kms.describe_key(KeyId=out["byok"])["KeyMetadata"]
    assert m["Origin"] == "EXTERNAL" and m["KeyState"] == "Enabled", m
    assert m["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE", m
    s3.put_object(Bucket="tf-byok", Key="o", Body=b"encrypted by default")
    got = s3.get_object(Bucket="tf-byok", Key="o")
    assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == m["Arn"]
    assert got["Body"].read() == b"encrypted by default"
    sig = kms.sign(KeyId=out["signing"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.verify(KeyId=out["signing"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256",
                      Signature=sig)["SignatureValid"]
    mac = kms.generate_mac(KeyId=out["mac"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.verify_mac(KeyId=out["mac"], Message=b"m", MacAlgorithm="HMAC_SHA_256",
                          Mac=mac)["MacValid"]

    assert s3.get_bucket_versioning(Bucket="tf-versioned")["Status"] == "Enabled"
    v1 = s3.put_object(Bucket="tf-versioned", Key="doc", Body=b"one")["VersionId"]
    s3.put_object(Bucket="tf-versioned", Key="doc", Body=b"two")
    assert s3.get_object(Bucket="tf-versioned", Key="doc", VersionId=v1)["Body"].read() == b"one"

    assert s3.get_object_lock_configuration(Bucket="tf-worm")["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="tf-versioned")["Rules"]}
    assert set(rules) == {"logs", "uploads", "tagged"}
    assert rules["logs"]["Transitions"] == [{"Days": 10, "StorageClass": "GLACIER"}]
    assert rules["tagged"]["Filter"]["And"]["Tags"] == [{"Key": "class", "Value": "scratch"}]
    kept = s3.put_object(Bucket="tf-worm", Key="record", Body=b"kept")["VersionId"]
    assert s3.head_object(Bucket="tf-worm", Key="record")["ObjectLockMode"] == "GOVERNANCE"

    # What Terraform reads back matches what it wrote: no drift.
    tf("plan", "-detailed-exitcode")

    s3.delete_object(Bucket="tf-byok", Key="o")
    # A versioned bucket is empty only when every version is gone.
    for v in s3.list_object_versions(Bucket="tf-versioned").get("Versions", []):
        s3.delete_object(Bucket="tf-versioned", Key=v["Key"], VersionId=v["VersionId"])
    # A bucket holding a locked version cannot be destroyed; bypassing GOVERNANCE frees it.
    s3.delete_object(Bucket="tf-worm", Key="record", VersionId=kept, BypassGovernanceRetention=True)
    tf("destroy", "-auto-approve")
    for k in out.values():
        assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "PendingDeletion"
