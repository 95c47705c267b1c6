//! Every frame the decoder accepts encodes back to bytes that decode to the
//! same frame (compared as bytes, so NaN payloads compare equal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::wire::frame::{self, Decoded};

fuzz_target!(|data: &[u8]| {
    let Ok(Decoded::Complete { frame: first, .. }) = frame::decode(data) else { return };
    let encoded = frame::encode(&first).expect("a decoded frame re-encodes within the size limit");
    let Ok(Decoded::Complete { frame: second, consumed }) = frame::decode(&encoded) else {
        panic!("re-encoded frame does not decode");
    };
    assert_eq!(consumed, encoded.len());
    assert_eq!(frame::encode(&second).expect("encode"), encoded);
});
