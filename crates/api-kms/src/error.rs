//! The one mapping from KMS domain errors (and the API layer's own failures) to AWS's
//! JSON error shape: `{"__type": "NotFoundException", "message": "..."}` with the HTTP
//! status AWS uses (400 for every client error, 500 for internal ones).

use coffer_kms::Error;

/// An error on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub status: u16,
    pub code: &'static str,
    /// AWS sends no message for some errors (InvalidCiphertextException).
    pub message: Option<String>,
}

impl WireError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: Some(message.into()),
        }
    }

    pub fn body(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert("__type".into(), self.code.into());
        if let Some(msg) = &self.message {
            m.insert("message".into(), msg.clone().into());
        }
        serde_json::Value::Object(m).to_string()
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }
}

pub fn to_wire(e: Error) -> WireError {
    if let Error::Internal(detail) = &e {
        tracing::error!(error = %detail, "KMS internal error");
        return WireError {
            status: 500,
            code: e.code(),
            message: Some("An internal error occurred.".into()),
        };
    }
    let message = match e {
        // Every ciphertext failure looks the same, without a message.
        Error::InvalidCiphertext => None,
        _ => Some(e.to_string()),
    };
    WireError {
        status: 400,
        code: e.code(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table() {
        let cases: Vec<(Error, &str, u16)> = vec![
            (Error::NotFound("x".into()), "NotFoundException", 400),
            (Error::InvalidArn("x".into()), "InvalidArnException", 400),
            (Error::Disabled("arn".into()), "DisabledException", 400),
            (
                Error::InvalidState {
                    arn: "arn".into(),
                    state: "pending deletion",
                },
                "KMSInvalidStateException",
                400,
            ),
            (Error::InvalidCiphertext, "InvalidCiphertextException", 400),
            (Error::IncorrectKey, "IncorrectKeyException", 400),
            (
                Error::InvalidKeyUsage("x".into()),
                "InvalidKeyUsageException",
                400,
            ),
            (
                Error::AlreadyExists("x".into()),
                "AlreadyExistsException",
                400,
            ),
            (
                Error::InvalidAliasName("x".into()),
                "InvalidAliasNameException",
                400,
            ),
            (
                Error::NotAuthorized("x".into()),
                "NotAuthorizedException",
                400,
            ),
            (
                Error::LimitExceeded("x".into()),
                "LimitExceededException",
                400,
            ),
            (
                Error::MalformedPolicyDocument("x".into()),
                "MalformedPolicyDocumentException",
                400,
            ),
            (Error::Tag("x".into()), "TagException", 400),
            (Error::InvalidMarker, "InvalidMarkerException", 400),
            (
                Error::InvalidImportToken,
                "InvalidImportTokenException",
                400,
            ),
            (
                Error::ExpiredImportToken,
                "ExpiredImportTokenException",
                400,
            ),
            (
                Error::IncorrectKeyMaterial("x".into()),
                "IncorrectKeyMaterialException",
                400,
            ),
            (Error::Validation("x".into()), "ValidationException", 400),
            (
                Error::UnsupportedOperation("x".into()),
                "UnsupportedOperationException",
                400,
            ),
            (
                Error::Internal("secret detail".into()),
                "KMSInternalException",
                500,
            ),
        ];
        for (e, code, status) in cases {
            let w = to_wire(e);
            assert_eq!((w.code, w.status), (code, status));
            assert!(!w.body().contains("secret detail"));
        }
    }

    #[test]
    fn invalid_ciphertext_has_no_message() {
        let body = to_wire(Error::InvalidCiphertext).body();
        assert_eq!(body, r#"{"__type":"InvalidCiphertextException"}"#);
    }
}
