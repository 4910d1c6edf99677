//! A byte buffer for keys and plaintexts.

use zeroize::Zeroizing;

/// Secret bytes: wiped when dropped, `[redacted]` when debug-printed, no `Display`, no
/// `Serialize`, compared in constant time.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    pub fn zeroed(len: usize) -> Self {
        Self::new(vec![0; len])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, for the cryptographic operation that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for Secret {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_slice(b"top secret bytes");
        let d = format!("{s:?}");
        assert!(!d.contains("top secret"));
        assert!(d.contains("16 bytes"));
        assert_eq!(s, Secret::from_slice(b"top secret bytes"));
        assert_ne!(s, Secret::from_slice(b"top secret bytez"));
    }
}
