//! A big-endian bit reader for codec headers: HEVC parameter sets (ITU-T H.265 7.2,
//! with Exp-Golomb codes, 9.2) and AV1 sequence headers (AV1 spec 4.10, 8.1).
//!
//! Every read is bounds-checked and fails with [`OutOfBits`] at the end of the input,
//! so a truncated or hostile header is an error, never a panic.

/// The header ended before a field did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBits;

/// A byte-aligned reader for decoder configuration records (ISO/IEC 14496-15), shared
/// by the H.264 and HEVC parsers. A read past the end fails with [`Truncated`] naming
/// the field.
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The record ended inside the named field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated(pub &'static str);

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated(what))?;
        let out = self.buf.get(self.pos..end).ok_or(Truncated(what))?;
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Truncated> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Truncated> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

pub struct BitReader<'a> {
    buf: &'a [u8],
    /// Position in bits from the start of `buf`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn bit(&mut self) -> Result<bool, OutOfBits> {
        let byte = self.buf.get(self.pos / 8).ok_or(OutOfBits)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number, most significant first.
    pub fn bits(&mut self, n: u32) -> Result<u32, OutOfBits> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        // At most 32 bits were shifted in.
        Ok(v as u32)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), OutOfBits> {
        let end = self.pos.checked_add(n).ok_or(OutOfBits)?;
        if end > self.buf.len() * 8 {
            return Err(OutOfBits);
        }
        self.pos = end;
        Ok(())
    }

    /// `ue(v)`: unsigned Exp-Golomb (H.265 9.2). Values beyond `u32` are refused as
    /// corrupt rather than wrapped.
    pub fn ue(&mut self) -> Result<u32, OutOfBits> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(OutOfBits);
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest))
            .try_into()
            .map_err(|_| OutOfBits)
    }

    /// `uvlc()` (AV1 4.10.3).
    pub fn uvlc(&mut self) -> Result<u32, OutOfBits> {
        self.ue()
    }
}

/// The RBSP of a NAL unit payload: `emulation_prevention_three_byte`s removed
/// (H.265 7.3.1.1, H.264 7.3.1).
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_exp_golomb_fields() {
        // 101 | 1 (ue 0) | 010 (ue 1) | 00111 (ue 6) | 0000
        let mut r = BitReader::new(&[0b1011_0100, 0b0111_0000]);
        assert_eq!(r.bits(3), Ok(0b101));
        assert_eq!(r.ue(), Ok(0));
        assert_eq!(r.ue(), Ok(1));
        assert_eq!(r.ue(), Ok(6));
        assert_eq!(r.bits(4), Ok(0));
        assert_eq!(r.bit(), Err(OutOfBits));
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), Err(OutOfBits));
        assert_eq!(BitReader::new(&[1]).skip(9), Err(OutOfBits));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(
            unescape_rbsp(&[0x42, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [0x42, 0, 0, 1, 0, 0, 0, 3]
        );
    }
}
