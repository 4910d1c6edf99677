//! Why a SigV4 artefact could not be parsed.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("only AWS4-HMAC-SHA256 is supported")]
    UnsupportedAlgorithm,
    #[error("the Authorization header is malformed")]
    MalformedAuthorization,
    #[error("the X-Amz-Date value is not of the form YYYYMMDDTHHMMSSZ")]
    MalformedDate,
}
