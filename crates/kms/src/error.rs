//! What a KMS operation can say went wrong, named by meaning. `coffer-api-kms` maps each
//! variant to AWS's exception name in one exhaustive match; the S3 SSE flow maps them to
//! S3's `KMS.*` errors.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArn(String),
    /// The key (ARN) is disabled.
    #[error("{0} is disabled.")]
    Disabled(String),
    /// The key (ARN) is in a state that does not allow the operation.
    #[error("{arn} is {state}.")]
    InvalidState { arn: String, state: &'static str },
    /// Every malformed, tampered or mismatched ciphertext, whatever the reason.
    #[error("The ciphertext is invalid.")]
    InvalidCiphertext,
    #[error("The key ID in the request does not identify a CMK that can perform this operation.")]
    IncorrectKey,
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("The grant token is not valid.")]
    InvalidGrantToken,
    /// Verify: the signature does not match.
    #[error("The signature is not valid.")]
    InvalidSignature,
    /// VerifyMac: the MAC does not match.
    #[error("The MAC does not match.")]
    InvalidMac,
    /// ImportKeyMaterial: the token is malformed, tampered or for another key.
    #[error("The import token is invalid or is associated with a different KMS key.")]
    InvalidImportToken,
    #[error("The import token has expired. Call GetParametersForImport again.")]
    ExpiredImportToken,
    /// Imported material that is not valid for the key, or not the material imported
    /// into it before.
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// The caller's key gate refused (key policy, IAM policies).
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    Tag(String),
    #[error("Invalid marker.")]
    InvalidMarker,
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// AWS's exception name for the error (what the KMS API and the audit trail report).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NotFoundException",
            Error::InvalidArn(_) => "InvalidArnException",
            Error::Disabled(_) => "DisabledException",
            Error::InvalidState { .. } => "KMSInvalidStateException",
            Error::InvalidCiphertext => "InvalidCiphertextException",
            Error::IncorrectKey => "IncorrectKeyException",
            Error::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            Error::AlreadyExists(_) => "AlreadyExistsException",
            Error::InvalidAliasName(_) => "InvalidAliasNameException",
            Error::NotAuthorized(_) => "NotAuthorizedException",
            Error::AccessDenied(_) => "AccessDeniedException",
            Error::InvalidGrantToken => "InvalidGrantTokenException",
            Error::InvalidImportToken => "InvalidImportTokenException",
            Error::ExpiredImportToken => "ExpiredImportTokenException",
            Error::IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            Error::InvalidMac => "KMSInvalidMacException",
            Error::InvalidSignature => "KMSInvalidSignatureException",
            Error::LimitExceeded(_) => "LimitExceededException",
            Error::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            Error::Tag(_) => "TagException",
            Error::InvalidMarker => "InvalidMarkerException",
            Error::Validation(_) => "ValidationException",
            Error::UnsupportedOperation(_) => "UnsupportedOperationException",
            Error::Internal(_) => "KMSInternalException",
        }
    }
}

impl From<coffer_storage::Error> for Error {
    fn from(e: coffer_storage::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<coffer_crypto::Error> for Error {
    fn from(e: coffer_crypto::Error) -> Self {
        match e {
            coffer_crypto::Error::Decrypt => Error::InvalidCiphertext,
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Why the KMS could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the root key does not match the one this data directory was created with (expected root key {expected}, got {given}); refusing to start rather than serve or overwrite anything"
    )]
    WrongRootKey { expected: String, given: String },
    #[error("loading KMS state: {0}")]
    Store(#[from] coffer_storage::Error),
    #[error("root key: {0}")]
    Crypto(#[from] coffer_crypto::Error),
    #[error("stored KMS data is inconsistent: {0}")]
    Corrupt(String),
}
