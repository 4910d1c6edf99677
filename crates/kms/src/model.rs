//! Keys as the KMS keeps them. [`KeyDoc`] and [`MaterialDoc`] are stored as JSON (see
//! `docs/formats.md`); every field added later must be `#[serde(default)]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),*
        }

        impl $name {
            /// AWS's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// A key's state; see `states.rs` for what each allows.
    KeyState {
        Enabled = "Enabled",
        Disabled = "Disabled",
        PendingDeletion = "PendingDeletion",
        PendingImport = "PendingImport",
    }
);

wire_enum!(KeyUsage {
    EncryptDecrypt = "ENCRYPT_DECRYPT",
    SignVerify = "SIGN_VERIFY",
    GenerateVerifyMac = "GENERATE_VERIFY_MAC",
    KeyAgreement = "KEY_AGREEMENT",
});

wire_enum!(KeySpec {
    SymmetricDefault = "SYMMETRIC_DEFAULT",
    Hmac224 = "HMAC_224",
    Hmac256 = "HMAC_256",
    Hmac384 = "HMAC_384",
    Hmac512 = "HMAC_512",
});

impl KeySpec {
    /// Bytes of key material.
    pub fn material_len(self) -> usize {
        match self {
            KeySpec::SymmetricDefault | KeySpec::Hmac256 => 32,
            KeySpec::Hmac224 => 28,
            KeySpec::Hmac384 => 48,
            KeySpec::Hmac512 => 64,
        }
    }

    /// The MAC algorithm of an HMAC key (`HMAC_SHA_256`); `None` for other keys.
    pub fn mac_algorithm(self) -> Option<&'static str> {
        match self {
            KeySpec::Hmac224 => Some("HMAC_SHA_224"),
            KeySpec::Hmac256 => Some("HMAC_SHA_256"),
            KeySpec::Hmac384 => Some("HMAC_SHA_384"),
            KeySpec::Hmac512 => Some("HMAC_SHA_512"),
            KeySpec::SymmetricDefault => None,
        }
    }
}

wire_enum!(Origin {
    AwsKms = "AWS_KMS",
    External = "EXTERNAL",
});

wire_enum!(KeyManager {
    Customer = "CUSTOMER",
    Aws = "AWS",
});

wire_enum!(RotationType {
    Automatic = "AUTOMATIC",
    OnDemand = "ON_DEMAND",
});

/// The last cryptographic use of a key (GetKeyLastUsage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsage {
    pub operation: String,
    pub time_ms: i64,
    pub request_id: String,
}

/// Everything about a key that is not its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDoc {
    #[serde(default)]
    pub description: String,
    pub usage: KeyUsage,
    pub spec: KeySpec,
    pub origin: Origin,
    pub manager: KeyManager,
    pub state: KeyState,
    #[serde(default)]
    pub deletion_date_ms: Option<i64>,
    #[serde(default)]
    pub pending_window_days: Option<u32>,
    /// `Some` while automatic rotation is enabled.
    #[serde(default)]
    pub rotation_period_days: Option<u32>,
    #[serde(default)]
    pub next_rotation_ms: Option<i64>,
    #[serde(default)]
    pub on_demand_rotations: u32,
    /// The material version new ciphertexts use.
    #[serde(default)]
    pub current_version: u32,
    pub policy: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub last_usage: Option<LastUsage>,
    /// A service key (the SSE-S3 key): never listed, never usable by clients.
    #[serde(default)]
    pub hidden: bool,
    /// Grants on the key (see `grants.rs`).
    #[serde(default)]
    pub grants: Vec<GrantDoc>,
}

/// One grant: a principal may perform some operations on the key, under optional
/// encryption-context constraints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDoc {
    /// 64 hex characters.
    pub grant_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee: String,
    #[serde(default)]
    pub retiring: Option<String>,
    /// Operation names without the `kms:` prefix (`Decrypt`).
    pub operations: Vec<String>,
    #[serde(default)]
    pub context_equals: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub context_subset: Option<std::collections::BTreeMap<String, String>>,
    /// The account of the principal that created the grant.
    pub issuing_account: String,
    pub created_ms: i64,
    /// Hex SHA-256 of the grant token.
    pub token_sha256: String,
}

/// About one version of a key's material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialDoc {
    /// 64 hex characters, AWS's `KeyMaterialId` shape.
    pub material_id: String,
    pub created_ms: i64,
    /// `None` for the material the key was created with.
    #[serde(default)]
    pub rotation: Option<RotationType>,
}

pub fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Key metadata, as DescribeKey reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMetadata {
    pub account_id: String,
    pub key_id: String,
    pub arn: String,
    pub created: OffsetDateTime,
    pub enabled: bool,
    pub description: String,
    pub usage: KeyUsage,
    pub state: KeyState,
    pub deletion_date: Option<OffsetDateTime>,
    pub pending_window_days: Option<u32>,
    pub origin: Origin,
    pub manager: KeyManager,
    pub spec: KeySpec,
    pub current_material_id: String,
}

/// One entry of ListKeyRotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEntry {
    pub key_id: String,
    pub material_id: String,
    pub rotation_date: OffsetDateTime,
    pub rotation_type: Option<RotationType>,
    pub current: bool,
}

/// GetKeyRotationStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatus {
    pub key_id: String,
    pub enabled: bool,
    pub period_days: Option<u32>,
    pub next_rotation: Option<OffsetDateTime>,
}

/// An alias, as ListAliases reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub target_key_id: Option<String>,
    pub created: Option<OffsetDateTime>,
    pub updated: Option<OffsetDateTime>,
}
