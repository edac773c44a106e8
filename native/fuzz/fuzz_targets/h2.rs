//! Fuzzes the native HTTP/2 server's receive path (`edgeward_core::h2`:
//! frames, HPACK with its Huffman decoder, flow control, the flood limits),
//! what a public client reaches first on an HTTP/2 listener. Input: the
//! bytes after the client preface, fed in two reads split at the first
//! byte's value, answering every request so streams close. It must never
//! panic, and once the connection ended it stays ended; the Huffman
//! decoder alone must take any bytes without panicking.
#![no_main]
#![forbid(unsafe_code)]

use edgeward_core::h2::{huffman, Event, Limits, Server};
use libfuzzer_sys::fuzz_target;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let _ = huffman::decode(data, &mut Vec::new());

    let mut server = Server::new(Limits::default(), b"http");
    server.initiate();
    let split = data.first().map_or(0, |&b| usize::from(b).min(data.len()));
    let mut ended = false;
    for (i, part) in [PREFACE, &data[..split], &data[split..]]
        .into_iter()
        .enumerate()
    {
        for event in server.receive_data(part, i as f64) {
            match event {
                Event::Request { stream_id, .. } => {
                    let _ = server.send_headers(stream_id, 200, &[], false);
                    let _ = server.end_stream(stream_id, &[], b"ok");
                }
                Event::ConnectionEnded { .. } => ended = true,
                _ => {}
            }
        }
        assert!(!ended || server.ended(), "an ended connection stays ended");
        let _ = server.data_to_send();
        server.all_sent();
    }
});
