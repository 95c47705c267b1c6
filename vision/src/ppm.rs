//! The frame format on ffmpeg's pipe: binary PPM (`P6`), one image after
//! another (`-c:v ppm -f image2pipe`).
//!
//! PPM is chosen over headerless `rawvideo` because every frame states its
//! own size: the detector never has to probe the source to learn the height
//! that `scale=W:-2` picked, and a source that changes resolution mid-stream
//! is followed instead of being misread as shifted garbage.
//!
//! Parsing is pure, over bytes, in the style of a wire codec: [`parse_header`]
//! either finds a complete header, says how many more bytes it needs, or
//! rejects the input. A hard size limit keeps a broken stream from asking
//! for gigabytes.

/// Largest frame accepted, per side. Detection runs at a few hundred pixels
/// wide; this leaves room for full-HD snapshots and no more.
pub const MAX_SIDE: u32 = 4096;

/// A parsed `P6` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// Bytes the header itself took; the pixels follow.
    pub header_len: usize,
}

impl Header {
    /// Bytes of pixel data after the header (packed RGB, 8 bits a channel).
    pub fn body_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

/// What [`parse_header`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Complete(Header),
    /// The buffer ends inside the header: read more and try again.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PpmError {
    #[error("not a binary PPM frame (expected \"P6\")")]
    NotPpm,
    #[error("malformed PPM header: {0}")]
    Malformed(&'static str),
    #[error("PPM frame of {width}×{height} is outside 1..={MAX_SIDE} per side")]
    BadSize { width: u32, height: u32 },
    #[error("PPM frames with maxval {0} are not supported (only 255)")]
    UnsupportedDepth(u32),
}

/// Parses the `P6` header at the front of `buf`:
/// `P6 <ws> width <ws> height <ws> maxval <one ws>`, with `#` comments.
pub fn parse_header(buf: &[u8]) -> Result<Parsed, PpmError> {
    if buf.len() < 2 {
        return if b"P6".starts_with(buf) { Ok(Parsed::Incomplete) } else { Err(PpmError::NotPpm) };
    }
    if &buf[..2] != b"P6" {
        return Err(PpmError::NotPpm);
    }
    let mut cursor = Cursor { buf, pos: 2 };
    let Some(width) = cursor.number()? else { return Ok(Parsed::Incomplete) };
    let Some(height) = cursor.number()? else { return Ok(Parsed::Incomplete) };
    let Some(maxval) = cursor.number()? else { return Ok(Parsed::Incomplete) };
    // Exactly one whitespace byte separates maxval from the pixels; the
    // number parser stopped at it.
    match buf.get(cursor.pos) {
        None => return Ok(Parsed::Incomplete),
        Some(b) if b.is_ascii_whitespace() => {}
        Some(_) => return Err(PpmError::Malformed("no whitespace after maxval")),
    }
    if maxval != 255 {
        return Err(PpmError::UnsupportedDepth(maxval));
    }
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(PpmError::BadSize { width, height });
    }
    Ok(Parsed::Complete(Header { width, height, header_len: cursor.pos + 1 }))
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    /// Skips whitespace and comments, then reads a decimal number. `None`
    /// when the buffer ends before the number does.
    fn number(&mut self) -> Result<Option<u32>, PpmError> {
        loop {
            match self.buf.get(self.pos) {
                None => return Ok(None),
                Some(b) if b.is_ascii_whitespace() => self.pos += 1,
                Some(b'#') => match self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                    Some(end) => self.pos += end + 1,
                    None => return Ok(None),
                },
                Some(b) if b.is_ascii_digit() => break,
                Some(_) => return Err(PpmError::Malformed("expected a number")),
            }
        }
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(&b) = self.buf.get(self.pos) {
            if !b.is_ascii_digit() {
                return Ok(Some(value));
            }
            if self.pos - start >= 6 {
                return Err(PpmError::Malformed("number too long"));
            }
            value = value * 10 + u32::from(b - b'0');
            self.pos += 1;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_style_header_parses() {
        let frame = b"P6\n320 180\n255\n\x01\x02\x03";
        assert_eq!(parse_header(frame), Ok(Parsed::Complete(Header { width: 320, height: 180, header_len: 15 })));
        assert_eq!(Header { width: 320, height: 180, header_len: 15 }.body_len(), 172_800);
    }

    #[test]
    fn comments_and_odd_whitespace_are_allowed() {
        let frame = b"P6 # made by hand\n 4\t2 # size\n255 ";
        assert_eq!(parse_header(frame), Ok(Parsed::Complete(Header { width: 4, height: 2, header_len: 34 })));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let frame = b"P6\n320 180\n255\n";
        for end in 0..frame.len() {
            assert_eq!(parse_header(&frame[..end]), Ok(Parsed::Incomplete), "prefix of {end} bytes");
        }
    }

    #[test]
    fn bad_headers_are_rejected_with_reasons() {
        assert_eq!(parse_header(b"P5\n1 1\n255\n"), Err(PpmError::NotPpm));
        assert_eq!(parse_header(b"GIF89a"), Err(PpmError::NotPpm));
        assert_eq!(parse_header(b"P6\nx"), Err(PpmError::Malformed("expected a number")));
        assert_eq!(parse_header(b"P6\n1 1\n65535\n"), Err(PpmError::UnsupportedDepth(65535)));
        assert_eq!(parse_header(b"P6\n0 10\n255\n"), Err(PpmError::BadSize { width: 0, height: 10 }));
        assert_eq!(parse_header(b"P6\n99999 10\n255\n"), Err(PpmError::BadSize { width: 99999, height: 10 }));
        assert_eq!(parse_header(b"P6\n12345678 1\n255\n"), Err(PpmError::Malformed("number too long")));
        assert_eq!(parse_header(b"P6\n1 1\n255x"), Err(PpmError::Malformed("no whitespace after maxval")));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_header(&bytes);
        }

        #[test]
        fn valid_headers_round_trip(width in 1..=MAX_SIDE, height in 1..=MAX_SIDE) {
            let text = format!("P6\n{width} {height}\n255\n");
            prop_assert_eq!(
                parse_header(text.as_bytes()),
                Ok(Parsed::Complete(Header { width, height, header_len: text.len() }))
            );
        }
    }
}
