//! The envelope decoder on arbitrary message parts, as a relay receives
//! them on its ROUTER sockets: the header is decoded, then the table it
//! describes. Errors are fine; panics, hangs and runaway allocations are
//! findings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtl_wire::Envelope;

fuzz_target!(|parts: Vec<Vec<u8>>| {
    let routed = parts.first().is_some_and(|p| p.len() % 2 == 0);
    let parts = parts.iter().map(|p| zmq::Message::from(&p[..])).collect();
    if let Ok((_, mut env)) = Envelope::decode(parts, routed) {
        let _ = env.take_table();
    }
});
