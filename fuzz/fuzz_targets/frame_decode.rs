//! Arbitrary bytes into the frame decoder: it must never panic, never claim
//! more bytes than it was given, and never allocate for a length it has not
//! checked (run with -malloc_limit_mb to catch over-allocation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::wire::frame::{self, Decoded, HEADER_LEN, MAX_FRAME_LEN};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Decode frame after frame, as a connection's reader would.
    while let Ok(Decoded::Complete { consumed, .. }) = frame::decode(rest) {
        assert!(consumed > HEADER_LEN && consumed <= rest.len() && consumed <= HEADER_LEN + MAX_FRAME_LEN);
        rest = &rest[consumed..];
    }
    if let Ok(Decoded::Incomplete { needed }) = frame::decode(rest) {
        assert!(needed >= 1 && needed <= HEADER_LEN + MAX_FRAME_LEN);
    }
    let _ = frame::decode_hello(data);
});
