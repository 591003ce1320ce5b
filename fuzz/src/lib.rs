//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Only one thing lives here: [`Input`], the cursor the structure-aware targets read their
//! choices from. It never fails: once the fuzzer's bytes run out every read returns zeros or
//! empty slices, so a target's interpreter loop simply ends when [`Input::is_empty`] says so.
//! Keeping reads total means a short input is still a valid (short) program, which is what
//! lets libFuzzer's mutations stay meaningful.

/// A read cursor over the fuzzer's input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { rest: data }
    }

    /// `true` once every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// One byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian 16-bit number, zero-padded past the end.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// One bit of choice (the low bit of the next byte).
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// Up to `n` bytes: fewer when the input ends first.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    /// A length byte and up to that many bytes.
    pub fn len_prefixed(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn reads_past_the_end_are_zero() {
        let mut input = Input::new(&[0x12, 0x34, 0x03, 0xAA]);
        assert_eq!(input.u16(), 0x1234);
        assert_eq!(input.len_prefixed(), &[0xAA]);
        assert!(input.is_empty());
        assert_eq!(input.u8(), 0);
        assert_eq!(input.take(5), &[] as &[u8]);
    }
}
