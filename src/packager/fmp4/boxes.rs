//! Low-level ISO BMFF box writing (ISO/IEC 14496-12 §4.2).
//!
//! Every writer appends to a `Vec<u8>`. A box is opened with a zero size, its body is
//! written by a closure, and the 32-bit size is patched in afterwards, so callers never
//! compute sizes by hand.
//!
//! Why 32-bit sizes suffice: an init segment holds fixed-size headers plus the codec
//! configuration record (an `AVCDecoderConfigurationRecord` arrives in one RTMP message,
//! whose length field is 24 bits, so it is below 16 MiB), and a fragment holds one
//! LL-HLS part or segment — a few seconds of media, tens of megabytes even at very high
//! bitrates. The 64-bit `largesize` form is therefore never needed. The conversions are
//! still checked: an oversized box is reported as [`Fmp4Error::TooLarge`] instead of
//! being written with a wrapped-around size.

use std::fmt;

use bytes::BufMut;

/// A four-character box type or brand.
pub type FourCc = [u8; 4];

/// Why a box could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmp4Error {
    /// A box, field or descriptor would not fit its size field. Not reachable with
    /// real streams: an init segment holds headers plus a codec configuration record
    /// of at most a few kilobytes, and a fragment holds one LL-HLS part or segment of
    /// a few seconds, far below the 4 GiB a 32-bit box size allows.
    TooLarge(&'static str),
    /// A fragment was requested for zero samples.
    NoSamples,
}

impl fmt::Display for Fmp4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fmp4Error::TooLarge(what) => write!(f, "{what} is too large for its size field"),
            Fmp4Error::NoSamples => f.write_str("a fragment needs at least one sample"),
        }
    }
}

impl std::error::Error for Fmp4Error {}

pub type Result<T> = std::result::Result<T, Fmp4Error>;

/// Writes a box: header with a placeholder size, the body, then the real size.
///
/// On error the buffer holds a partial box; callers discard the whole buffer.
pub fn write_box<F>(out: &mut Vec<u8>, fourcc: FourCc, body: F) -> Result<()>
where
    F: FnOnce(&mut Vec<u8>) -> Result<()>,
{
    let start = out.len();
    out.put_u32(0);
    out.put_slice(&fourcc);
    body(out)?;
    patch_size(out, start)
}

/// Writes a FullBox (§4.2): a box whose body starts with version and 24-bit flags.
/// Bits of `flags` above the low 24 are ignored.
pub fn write_full_box<F>(
    out: &mut Vec<u8>,
    fourcc: FourCc,
    version: u8,
    flags: u32,
    body: F,
) -> Result<()>
where
    F: FnOnce(&mut Vec<u8>) -> Result<()>,
{
    write_box(out, fourcc, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
        body(out)
    })
}

/// Overwrites the 32-bit size field of the box that starts at `start`.
fn patch_size(out: &mut [u8], start: usize) -> Result<()> {
    let len = out.len().saturating_sub(start);
    let size = u32::try_from(len).map_err(|_| Fmp4Error::TooLarge("box"))?;
    patch_u32(out, start, size)
}

/// Overwrites four bytes at `pos` with `value`, big-endian.
pub fn patch_u32(out: &mut [u8], pos: usize, value: u32) -> Result<()> {
    let field = pos
        .checked_add(4)
        .and_then(|end| out.get_mut(pos..end))
        .ok_or(Fmp4Error::TooLarge("patch position"))?;
    field.copy_from_slice(&value.to_be_bytes());
    Ok(())
}

/// The identity transformation matrix of `mvhd`/`tkhd` (§8.2.2.3, §8.3.2.3):
/// {0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}.
pub fn put_unity_matrix(out: &mut Vec<u8>) {
    const UNITY: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
    for value in UNITY {
        out.put_u32(value);
    }
}

/// Appends `count` zero bytes (reserved and pre-defined fields).
pub fn put_zeros(out: &mut Vec<u8>, count: usize) {
    out.put_bytes(0, count);
}

/// Converts a length to a `u32` field, reporting which field overflowed.
pub fn u32_len(len: usize, what: &'static str) -> Result<u32> {
    u32::try_from(len).map_err(|_| Fmp4Error::TooLarge(what))
}

/// Test-only box reader: an independent walk over the written bytes, so tests check
/// sizes and nesting rather than trusting the writer's own bookkeeping.
#[cfg(test)]
pub mod reader {
    /// One box: its type and its body (everything after the 8-byte header).
    #[derive(Debug, Clone, Copy)]
    pub struct RawBox<'a> {
        pub fourcc: [u8; 4],
        pub body: &'a [u8],
    }

    /// Splits `data` into consecutive boxes; panics if the sizes do not tile it exactly.
    pub fn boxes(mut data: &[u8]) -> Vec<RawBox<'_>> {
        let mut found = Vec::new();
        while !data.is_empty() {
            assert!(data.len() >= 8, "truncated box header");
            let size = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
            assert!(size >= 8 && size <= data.len(), "bad box size {size}");
            let fourcc: [u8; 4] = data[4..8].try_into().unwrap();
            found.push(RawBox {
                fourcc,
                body: &data[8..size],
            });
            data = &data[size..];
        }
        found
    }

    /// The only child of `data` with type `fourcc`; panics if absent or repeated.
    pub fn child<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> RawBox<'a> {
        let mut matching = boxes(data).into_iter().filter(|b| &b.fourcc == fourcc);
        let first = matching
            .next()
            .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(fourcc)));
        assert!(matching.next().is_none(), "repeated box");
        first
    }

    /// Follows a path of plain container boxes from `data`.
    pub fn path<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> RawBox<'a> {
        let (first, rest) = path.split_first().expect("empty path");
        let mut current = child(data, first);
        for fourcc in rest {
            current = child(current.body, fourcc);
        }
        current
    }

    pub fn u32_at(data: &[u8], pos: usize) -> u32 {
        u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_size_is_patched_after_body() {
        let mut out = vec![0xAA]; // unrelated leading byte: sizes are relative to the box
        write_box(&mut out, *b"test", |out| {
            out.put_slice(&[1, 2, 3]);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0xAA, 0, 0, 0, 11, b't', b'e', b's', b't', 1, 2, 3]);
    }

    #[test]
    fn full_box_header_and_nested_sizes() {
        let mut out = Vec::new();
        write_box(&mut out, *b"outr", |out| {
            write_full_box(out, *b"innr", 1, 0xFF12_3456, |out| {
                out.put_u8(9);
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(
            out,
            [
                0, 0, 0, 21, b'o', b'u', b't', b'r', //
                0, 0, 0, 13, b'i', b'n', b'n', b'r', 1, 0x12, 0x34, 0x56, 9
            ]
        );
    }

    #[test]
    fn body_error_propagates() {
        let mut out = Vec::new();
        let err = write_box(&mut out, *b"test", |_| Err(Fmp4Error::NoSamples));
        assert_eq!(err, Err(Fmp4Error::NoSamples));
    }

    #[test]
    fn patch_out_of_range_is_an_error_not_a_panic() {
        let mut out = vec![0; 6];
        assert!(patch_u32(&mut out, 3, 1).is_err());
        assert!(patch_u32(&mut out, usize::MAX, 1).is_err());
        assert!(patch_u32(&mut out, 2, 0x0102_0304).is_ok());
        assert_eq!(out, [0, 0, 1, 2, 3, 4]);
    }
}
