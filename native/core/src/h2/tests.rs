//! Unit tests of the HTTP/2 server core; the differential tests against h2
//! live in tests/http2.
use super::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(ftype: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![
        (payload.len() >> 16) as u8,
        (payload.len() >> 8) as u8,
        payload.len() as u8,
        ftype,
        flags,
    ];
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn get_block() -> Vec<u8> {
    // :method GET, :scheme http, :path /, :authority a.test (literal, indexed name 1)
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 6];
    block.extend_from_slice(b"a.test");
    block
}

fn started() -> Server {
    let mut server = Server::new(Limits::default(), b"http");
    server.initiate();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    assert_eq!(
        server.receive_data(&hello, 0.0),
        vec![Event::WindowOpened { stream_id: 0 }]
    );
    server.data_to_send();
    server.all_sent();
    server
}

#[test]
fn a_request_and_its_response() {
    let mut server = started();
    let events = server.receive_data(&frame(HEADERS, 0x5, 1, &get_block()), 0.0);
    assert_eq!(
        events,
        vec![Event::Request {
            stream_id: 1,
            method: b"GET".to_vec(),
            target: b"/".to_vec(),
            authority: b"a.test".to_vec(),
            scheme: b"http".to_vec(),
            headers: vec![],
            end_stream: true,
        }]
    );
    server
        .send_headers(1, 200, &[(b"content-type", b"text/plain")], false)
        .unwrap();
    assert_eq!(server.send_window(1), 16_384);
    server.end_stream(1, &[], b"hi").unwrap();
    assert_eq!(server.send_window(1), -1);
    let out = server.data_to_send();
    // HEADERS: size update 0, :status 200 indexed, content-type literal (name 31)
    assert_eq!(&out[..9], &[0, 0, 15, HEADERS, 0x4, 0, 0, 0, 1]);
    assert_eq!(&out[9..13], &[0x20, 0x88, 0x0f, 0x10]);
}

#[test]
fn split_reads_give_the_same_events() {
    let mut data = frame(HEADERS, 0x4, 1, &[0x83, 0x86, 0x84, 0x01, 1, b'a']);
    data.extend(frame(DATA, 0, 1, b"hello"));
    data.extend(frame(DATA, 0x1, 1, b""));
    let whole = started().receive_data(&data, 0.0);
    let mut server = started();
    let mut pieces = Vec::new();
    for byte in &data {
        pieces.extend(server.receive_data(&[*byte], 0.0));
    }
    assert_eq!(whole, pieces);
    assert_eq!(whole.len(), 4);
}

#[test]
fn bad_preface_ends_without_goaway() {
    let mut server = Server::new(Limits::default(), b"http");
    server.initiate();
    server.data_to_send();
    let events = server.receive_data(b"GET / HTTP/1.1\r\n", 0.0);
    assert!(matches!(
        events[..],
        [Event::ConnectionEnded {
            error_code: PROTOCOL_ERROR,
            ..
        }]
    ));
    assert!(server.data_to_send().is_empty());
}

#[test]
fn data_on_stream_zero_is_a_connection_error() {
    let mut server = started();
    let events = server.receive_data(&frame(DATA, 0, 0, b"x"), 0.0);
    assert!(matches!(
        events[..],
        [Event::ConnectionEnded {
            error_code: PROTOCOL_ERROR,
            ..
        }]
    ));
    let out = server.data_to_send();
    assert_eq!(out[3], GOAWAY);
    assert!(server
        .receive_data(&frame(PING, 0, 0, &[0; 8]), 0.0)
        .is_empty());
}

#[test]
fn ping_floods_end_the_connection() {
    let mut server = started();
    let ping = frame(PING, 0, 0, &[1; 8]);
    let events = server.receive_data(&ping.repeat(2000), 0.0);
    assert_eq!(
        events,
        vec![Event::ConnectionEnded {
            error_code: ENHANCE_YOUR_CALM,
            reason: "too many control frames".into()
        }]
    );
}

#[test]
fn garbage_never_panics() {
    // a crude sweep; the fuzz target does the real work
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut server = started();
        let mut data = Vec::new();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push((seed >> 24) as u8 % 12);
        }
        server.receive_data(&data, 0.0);
    }
}
