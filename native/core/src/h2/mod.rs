//! HTTP/2 for the server side of the proxy: the connection state machine,
//! frame codec, header checks and HPACK (our own decoder: `hpack`,
//! `huffman`) in Rust. The Python twin is `edgeward.http2.connection.H2Server`
//! (h2 with our limits around it); both emit the same events and errors
//! (see docs/http2.md).

pub mod fields;
pub mod hpack;
pub mod huffman;
mod server;

#[cfg(test)]
mod tests;

pub use server::{Event, Limits, SendError, Server};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const ALTSVC: u8 = 0xa;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
