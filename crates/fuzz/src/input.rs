//! Reading structure out of a fuzzer's bytes, and the one way targets tamper with a
//! well-formed value.

/// A cursor over fuzz input: every read succeeds, yielding zeros once the bytes run out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// `original` changed as `edits` say: a list of operations (flip bits at a place, cut the
/// end off, append bytes, remove a range). The same edits always give the same result.
pub fn tamper(original: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut out = original.to_vec();
    let mut r = Input::new(edits);
    while !r.is_empty() {
        match r.u8() % 4 {
            0 => {
                let at = r.u32() as usize;
                let flip = r.u8().max(1);
                if !out.is_empty() {
                    let i = at % out.len();
                    out[i] ^= flip;
                }
            }
            1 => {
                let n = r.u32() as usize % (out.len() + 1);
                out.truncate(n);
            }
            2 => {
                let n = usize::from(r.u8());
                out.extend_from_slice(r.take(n));
            }
            _ => {
                let at = r.u32() as usize % (out.len() + 1);
                let n = usize::from(r.u16());
                let end = at.saturating_add(n).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}
