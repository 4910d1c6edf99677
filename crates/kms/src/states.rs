//! What each key state allows: one table, asserted cell by cell in the tests. From AWS's
//! "Key states of AWS KMS keys" table, for symmetric keys with AWS_KMS origin (see
//! `docs/research-kms.md`). Where AWS documents either DisabledException or
//! KMSInvalidStateException for a key pending deletion, Coffer answers
//! KMSInvalidStateException, the one observed on AWS.

use crate::{Error, KeyState, Origin, Result};

/// The operations that act on an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CancelKeyDeletion,
    CreateAlias,
    CreateGrant,
    Decrypt,
    DeleteAlias,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    GetKeyLastUsage,
    GetKeyPolicy,
    GetParametersForImport,
    GetPublicKey,
    GetKeyRotationStatus,
    ImportKeyMaterial,
    ListAliases,
    ListGrants,
    ListKeyPolicies,
    ListKeyRotations,
    ListResourceTags,
    PutKeyPolicy,
    ReEncryptFrom,
    ReEncryptTo,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateKeyDescription,
    Verify,
    VerifyMac,
}

/// The rows of the key-state table: operations that behave alike in every state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    AnyState,
    Cancel,
    NeedsEnabled,
    EnableDisable,
    Management,
}

/// The outcome of an operation in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// `DisabledException`
    Disabled,
    /// `KMSInvalidStateException`
    InvalidState,
}

impl Op {
    /// The IAM action a key policy must allow for the operation.
    pub fn action(self) -> &'static str {
        match self {
            Op::CancelKeyDeletion => "kms:CancelKeyDeletion",
            Op::CreateAlias => "kms:CreateAlias",
            Op::CreateGrant => "kms:CreateGrant",
            Op::Decrypt => "kms:Decrypt",
            Op::DeleteAlias => "kms:DeleteAlias",
            Op::DeleteImportedKeyMaterial => "kms:DeleteImportedKeyMaterial",
            Op::DeriveSharedSecret => "kms:DeriveSharedSecret",
            Op::DescribeKey => "kms:DescribeKey",
            Op::DisableKey => "kms:DisableKey",
            Op::DisableKeyRotation => "kms:DisableKeyRotation",
            Op::EnableKey => "kms:EnableKey",
            Op::EnableKeyRotation => "kms:EnableKeyRotation",
            Op::Encrypt => "kms:Encrypt",
            Op::GenerateDataKey => "kms:GenerateDataKey",
            Op::GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext",
            Op::GenerateDataKeyPair => "kms:GenerateDataKeyPair",
            Op::GenerateDataKeyPairWithoutPlaintext => "kms:GenerateDataKeyPairWithoutPlaintext",
            Op::GenerateMac => "kms:GenerateMac",
            Op::GetKeyLastUsage => "kms:GetKeyLastUsage",
            Op::GetKeyPolicy => "kms:GetKeyPolicy",
            Op::GetParametersForImport => "kms:GetParametersForImport",
            Op::GetPublicKey => "kms:GetPublicKey",
            Op::GetKeyRotationStatus => "kms:GetKeyRotationStatus",
            Op::ImportKeyMaterial => "kms:ImportKeyMaterial",
            Op::ListAliases => "kms:ListAliases",
            Op::ListGrants => "kms:ListGrants",
            Op::ListKeyPolicies => "kms:ListKeyPolicies",
            Op::ListKeyRotations => "kms:ListKeyRotations",
            Op::ListResourceTags => "kms:ListResourceTags",
            Op::PutKeyPolicy => "kms:PutKeyPolicy",
            Op::ReEncryptFrom => "kms:ReEncryptFrom",
            Op::ReEncryptTo => "kms:ReEncryptTo",
            Op::RetireGrant => "kms:RetireGrant",
            Op::RevokeGrant => "kms:RevokeGrant",
            Op::RotateKeyOnDemand => "kms:RotateKeyOnDemand",
            Op::ScheduleKeyDeletion => "kms:ScheduleKeyDeletion",
            Op::Sign => "kms:Sign",
            Op::TagResource => "kms:TagResource",
            Op::UntagResource => "kms:UntagResource",
            Op::UpdateAlias => "kms:UpdateAlias",
            Op::UpdateKeyDescription => "kms:UpdateKeyDescription",
            Op::Verify => "kms:Verify",
            Op::VerifyMac => "kms:VerifyMac",
        }
    }

    /// Which row of AWS's key-state table the operation follows. Every operation is named
    /// once, so adding one forces a choice here.
    fn class(self) -> Class {
        use Op::*;
        match self {
            DescribeKey | GetKeyLastUsage | GetKeyPolicy | PutKeyPolicy | ListAliases
            | ListKeyPolicies | ListResourceTags | DeleteAlias | GetKeyRotationStatus
            | ListKeyRotations | ListGrants | RetireGrant | RevokeGrant => Class::AnyState,
            CancelKeyDeletion => Class::Cancel,
            Encrypt
            | Decrypt
            | GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | ReEncryptFrom
            | ReEncryptTo
            | GenerateMac
            | VerifyMac
            | Sign
            | Verify
            | GetPublicKey
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext
            | DeriveSharedSecret
            | EnableKeyRotation
            | DisableKeyRotation
            | RotateKeyOnDemand => Class::NeedsEnabled,
            EnableKey | DisableKey => Class::EnableDisable,
            CreateAlias
            | CreateGrant
            | UpdateAlias
            | ScheduleKeyDeletion
            | TagResource
            | UntagResource
            | UpdateKeyDescription
            | GetParametersForImport
            | ImportKeyMaterial
            | DeleteImportedKeyMaterial => Class::Management,
        }
    }

    pub fn outcome(self, state: KeyState) -> Outcome {
        use KeyState::*;
        use Outcome as O;
        match (self.class(), state) {
            // Read-only and alias-removal operations work in every state.
            (Class::AnyState, _) => O::Allowed,
            (Class::Cancel, PendingDeletion) => O::Allowed,
            (Class::Cancel, _) => O::InvalidState,
            // Cryptographic operations and rotation need an enabled key.
            (Class::NeedsEnabled, Enabled) => O::Allowed,
            (Class::NeedsEnabled, Disabled) => O::Disabled,
            (Class::NeedsEnabled, PendingDeletion | PendingImport) => O::InvalidState,
            (Class::EnableDisable, Enabled | Disabled) => O::Allowed,
            (Class::EnableDisable, PendingDeletion | PendingImport) => O::InvalidState,
            // Management that PendingDeletion forbids.
            (Class::Management, PendingDeletion) => O::InvalidState,
            (Class::Management, Enabled | Disabled | PendingImport) => O::Allowed,
        }
    }

    /// Operations that only keys of one origin support: rotation needs material Coffer
    /// generated; importing needs an EXTERNAL key. AWS checks this before the key state.
    pub fn check_origin(self, origin: Origin, arn: &str) -> Result<()> {
        let wrong = matches!(
            (self, origin),
            (
                Op::EnableKeyRotation
                    | Op::DisableKeyRotation
                    | Op::GetKeyRotationStatus
                    | Op::RotateKeyOnDemand,
                Origin::External,
            ) | (
                Op::GetParametersForImport | Op::ImportKeyMaterial | Op::DeleteImportedKeyMaterial,
                Origin::AwsKms,
            )
        );
        if wrong {
            return Err(Error::UnsupportedOperation(format!(
                "{arn} origin is {} which is not valid for this operation.",
                origin.as_str()
            )));
        }
        Ok(())
    }

    /// The error for a key (`arn`) in `state`, or `Ok` when allowed.
    pub fn check(self, state: KeyState, arn: &str) -> Result<()> {
        match self.outcome(state) {
            Outcome::Allowed => Ok(()),
            Outcome::Disabled => Err(Error::Disabled(arn.to_owned())),
            Outcome::InvalidState => Err(Error::InvalidState {
                arn: arn.to_owned(),
                state: match (self, state) {
                    (Op::CancelKeyDeletion, _) => "not pending deletion",
                    (_, KeyState::Enabled) => "enabled",
                    (_, KeyState::Disabled) => "disabled",
                    (_, KeyState::PendingDeletion) => "pending deletion",
                    (_, KeyState::PendingImport) => "pending import",
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cell, in the order Enabled, Disabled, PendingDeletion, PendingImport.
    /// A = allowed, D = DisabledException, S = KMSInvalidStateException.
    const TABLE: &[(Op, &str)] = &[
        (Op::CancelKeyDeletion, "SSAS"),
        (Op::CreateAlias, "AASA"),
        (Op::CreateGrant, "AASA"),
        (Op::Decrypt, "ADSS"),
        (Op::DeleteAlias, "AAAA"),
        (Op::DeleteImportedKeyMaterial, "AASA"),
        (Op::DeriveSharedSecret, "ADSS"),
        (Op::DescribeKey, "AAAA"),
        (Op::DisableKey, "AASS"),
        (Op::DisableKeyRotation, "ADSS"),
        (Op::EnableKey, "AASS"),
        (Op::EnableKeyRotation, "ADSS"),
        (Op::Encrypt, "ADSS"),
        (Op::GenerateDataKey, "ADSS"),
        (Op::GenerateDataKeyWithoutPlaintext, "ADSS"),
        (Op::GenerateDataKeyPair, "ADSS"),
        (Op::GenerateDataKeyPairWithoutPlaintext, "ADSS"),
        (Op::GenerateMac, "ADSS"),
        (Op::GetKeyLastUsage, "AAAA"),
        (Op::GetKeyPolicy, "AAAA"),
        (Op::GetParametersForImport, "AASA"),
        (Op::GetPublicKey, "ADSS"),
        (Op::GetKeyRotationStatus, "AAAA"),
        (Op::ImportKeyMaterial, "AASA"),
        (Op::ListAliases, "AAAA"),
        (Op::ListGrants, "AAAA"),
        (Op::ListKeyPolicies, "AAAA"),
        (Op::ListKeyRotations, "AAAA"),
        (Op::ListResourceTags, "AAAA"),
        (Op::PutKeyPolicy, "AAAA"),
        (Op::ReEncryptFrom, "ADSS"),
        (Op::ReEncryptTo, "ADSS"),
        (Op::RetireGrant, "AAAA"),
        (Op::RevokeGrant, "AAAA"),
        (Op::RotateKeyOnDemand, "ADSS"),
        (Op::ScheduleKeyDeletion, "AASA"),
        (Op::Sign, "ADSS"),
        (Op::TagResource, "AASA"),
        (Op::UntagResource, "AASA"),
        (Op::UpdateAlias, "AASA"),
        (Op::UpdateKeyDescription, "AASA"),
        (Op::Verify, "ADSS"),
        (Op::VerifyMac, "ADSS"),
    ];

    #[test]
    fn key_state_table_cell_by_cell() {
        let states = [
            KeyState::Enabled,
            KeyState::Disabled,
            KeyState::PendingDeletion,
            KeyState::PendingImport,
        ];
        for (op, row) in TABLE {
            for (state, cell) in states.iter().zip(row.chars()) {
                let want = match cell {
                    'A' => Outcome::Allowed,
                    'D' => Outcome::Disabled,
                    _ => Outcome::InvalidState,
                };
                assert_eq!(op.outcome(*state), want, "{op:?} in {state:?}");
            }
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = Op::Encrypt
            .check(KeyState::Disabled, "arn:k")
            .expect_err("disabled");
        assert_eq!(e.to_string(), "arn:k is disabled.");
        let e = Op::Encrypt
            .check(KeyState::PendingDeletion, "arn:k")
            .expect_err("pending");
        assert_eq!(e.to_string(), "arn:k is pending deletion.");
    }
}
