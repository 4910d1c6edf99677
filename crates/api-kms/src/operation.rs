//! The closed set of KMS operations (`X-Amz-Target: TrentService.<Operation>`), grouped as
//! the handlers are (key management and symmetric cryptography in `ops.rs`, HMAC and
//! asymmetric keys in `asym.rs`, grants, imported material), with every per-operation fact
//! the API needs: the AWS name, whether it is decided by the caller's IAM policies alone
//! (it names no key), and whether it only reads (CloudTrail's `readOnly`). Each handler
//! matches its group exhaustively; adding an operation is one variant and one arm.

/// A KMS operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Core(Core),
    Asym(Asym),
    Grant(Grants),
    Import(Import),
    /// An AWS KMS operation Coffer does not implement yet (by its AWS name).
    NotYet(&'static str),
    /// A name the KMS API does not have.
    Unknown,
}

use coffer_api::operation_group as group;

group!(
    /// Keys, aliases, tags, policies, rotation and symmetric cryptography (`ops.rs`).
    Core {
        CancelKeyDeletion, CreateAlias, CreateKey, Decrypt, DeleteAlias, DescribeKey,
        DisableKey, DisableKeyRotation, EnableKey, EnableKeyRotation, Encrypt,
        GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom,
        GetKeyLastUsage, GetKeyPolicy, GetKeyRotationStatus, ListAliases,
        ListKeyPolicies, ListKeyRotations, ListKeys, ListResourceTags, PutKeyPolicy,
        ReEncrypt, RotateKeyOnDemand, ScheduleKeyDeletion, TagResource, UntagResource,
        UpdateAlias, UpdateKeyDescription,
    }
);
group!(
    /// HMAC and asymmetric keys (`asym.rs`).
    Asym {
        DeriveSharedSecret, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext,
        GenerateMac, GetPublicKey, Sign, Verify, VerifyMac,
    }
);
group!(
    /// Grants (`grants.rs`).
    Grants {
        CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant,
    }
);
group!(
    /// Imported key material (`import.rs`).
    Import {
        DeleteImportedKeyMaterial, GetParametersForImport, ImportKeyMaterial,
    }
);

/// Operations of the AWS KMS API that this server does not implement yet.
const NOT_YET: &[&str] = &[
    "ConnectCustomKeyStore",
    "CreateCustomKeyStore",
    "DeleteCustomKeyStore",
    "DescribeCustomKeyStores",
    "DisconnectCustomKeyStore",
    "ReplicateKey",
    "UpdateCustomKeyStore",
    "UpdatePrimaryRegion",
];

impl Operation {
    /// The operation an `X-Amz-Target` names (`TrentService.Encrypt`).
    pub fn from_target(target: &str) -> Operation {
        let name = target.strip_prefix("TrentService.").unwrap_or("");
        Core::find(name)
            .map(Operation::Core)
            .or_else(|| Asym::find(name).map(Operation::Asym))
            .or_else(|| Grants::find(name).map(Operation::Grant))
            .or_else(|| Import::find(name).map(Operation::Import))
            .or_else(|| {
                NOT_YET
                    .iter()
                    .copied()
                    .find(|n| *n == name)
                    .map(Operation::NotYet)
            })
            .unwrap_or(Operation::Unknown)
    }

    /// AWS's name, for the audit record.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Core(o) => o.name(),
            Operation::Asym(o) => o.name(),
            Operation::Grant(o) => o.name(),
            Operation::Import(o) => o.name(),
            Operation::NotYet(name) => name,
            Operation::Unknown => "Unknown",
        }
    }

    /// Operations on no particular key: decided by the caller's IAM policies alone
    /// (every other one is decided key by key in the KMS, the key policy first).
    pub fn account_level(self) -> bool {
        matches!(
            self,
            Operation::Core(
                Core::CreateKey
                    | Core::ListKeys
                    | Core::ListAliases
                    | Core::GenerateRandom
                    | Core::DeleteAlias
            ) | Operation::Grant(Grants::ListRetirableGrants)
        )
    }

    /// CloudTrail's `readOnly`: the reads, and the cryptographic operations that change
    /// no key (as AWS records them).
    pub fn read_only(self) -> bool {
        match self {
            Operation::Core(o) => match o {
                Core::Decrypt
                | Core::DescribeKey
                | Core::Encrypt
                | Core::GenerateDataKey
                | Core::GenerateDataKeyWithoutPlaintext
                | Core::GenerateRandom
                | Core::GetKeyLastUsage
                | Core::GetKeyPolicy
                | Core::GetKeyRotationStatus
                | Core::ListAliases
                | Core::ListKeyPolicies
                | Core::ListKeyRotations
                | Core::ListKeys
                | Core::ListResourceTags
                | Core::ReEncrypt => true,
                Core::CancelKeyDeletion
                | Core::CreateAlias
                | Core::CreateKey
                | Core::DeleteAlias
                | Core::DisableKey
                | Core::DisableKeyRotation
                | Core::EnableKey
                | Core::EnableKeyRotation
                | Core::PutKeyPolicy
                | Core::RotateKeyOnDemand
                | Core::ScheduleKeyDeletion
                | Core::TagResource
                | Core::UntagResource
                | Core::UpdateAlias
                | Core::UpdateKeyDescription => false,
            },
            Operation::Asym(o) => match o {
                Asym::GetPublicKey => true,
                Asym::DeriveSharedSecret
                | Asym::GenerateDataKeyPair
                | Asym::GenerateDataKeyPairWithoutPlaintext
                | Asym::GenerateMac
                | Asym::Sign
                | Asym::Verify
                | Asym::VerifyMac => false,
            },
            Operation::Grant(o) => match o {
                Grants::ListGrants | Grants::ListRetirableGrants => true,
                Grants::CreateGrant | Grants::RetireGrant | Grants::RevokeGrant => false,
            },
            Operation::Import(o) => match o {
                Import::GetParametersForImport => true,
                Import::DeleteImportedKeyMaterial | Import::ImportKeyMaterial => false,
            },
            Operation::NotYet(name) => name.starts_with("Describe"),
            Operation::Unknown => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every() -> Vec<Operation> {
        Core::ALL
            .iter()
            .map(|o| Operation::Core(*o))
            .chain(Asym::ALL.iter().map(|o| Operation::Asym(*o)))
            .chain(Grants::ALL.iter().map(|o| Operation::Grant(*o)))
            .chain(Import::ALL.iter().map(|o| Operation::Import(*o)))
            .chain(NOT_YET.iter().map(|n| Operation::NotYet(n)))
            .collect()
    }

    #[test]
    fn every_operation_is_found_by_its_target() {
        let all = every();
        assert_eq!(all.len(), 54, "AWS KMS has 54 operations");
        for op in all {
            assert_eq!(
                Operation::from_target(&format!("TrentService.{}", op.name())),
                op
            );
        }
        assert_eq!(
            Operation::from_target("TrentService.Nope"),
            Operation::Unknown
        );
        assert_eq!(Operation::from_target("Encrypt"), Operation::Unknown);
    }

    /// The rule the audit trail applied by name before operations were typed: the
    /// explicit table must give the same answers.
    #[test]
    fn read_only_matches_the_earlier_rule_by_name() {
        for op in every() {
            let n = op.name();
            let by_name = ["Get", "List", "Describe"].iter().any(|p| n.starts_with(p))
                || matches!(
                    n,
                    "Decrypt"
                        | "Encrypt"
                        | "GenerateDataKey"
                        | "GenerateDataKeyWithoutPlaintext"
                        | "GenerateRandom"
                        | "ReEncrypt"
                );
            assert_eq!(op.read_only(), by_name, "{n}");
        }
    }
}
