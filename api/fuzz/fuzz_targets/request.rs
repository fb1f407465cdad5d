//! The control API's request decoding and every stateless check, over arbitrary bytes:
//! nothing may panic, and a request that decodes must survive a round trip through its
//! own encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roam_api::{decode, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = decode(data) else { return };
    match &request {
        Request::Attach(a) => {
            let _ = a.check();
        }
        Request::SetAnycast(s) => {
            let _ = s.check();
        }
        Request::ArpAnnounce(f) => {
            let _ = f.check();
        }
        Request::SetUnderlay(u) => {
            let _ = u.check(roam_api::MacAddr([2, 0, 0, 0, 0, 1]));
        }
        _ => {}
    }
    let line = serde_json::to_vec(&request).expect("a decoded request encodes");
    assert_eq!(decode(&line).expect("its encoding decodes"), request);
});
