//! `Server`: one HTTP/2 server connection, sans-IO (RFC 9113). Bytes in,
//! events and bytes out; the caller passes the time. It behaves as
//! `edgeward.http2.connection.H2Server` (h2 with our limits around it)
//! does, event for event; `docs/http2.md` lists the few places where it is
//! stricter.

use std::collections::{HashMap, VecDeque};

use super::fields::{self, Field};
use super::hpack::{self, DecodeError, Decoder, Encoder};
use super::*;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const MAX_WINDOW: i64 = (1 << 31) - 1;
/// Our SETTINGS_MAX_FRAME_SIZE (the default, never changed).
const MAX_INBOUND_FRAME: usize = 16_384;
/// CONTINUATION frames allowed per header block, after its HEADERS (h2's).
const MAX_CONTINUATIONS: usize = 63;
/// Closed streams remembered (to answer late frames on them as RFC 9113
/// §5.1 asks); older ones count as never opened.
const CLOSED_REMEMBERED: usize = 4096;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// The limits of one connection (`edgeward.http2.H2Limits`).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_concurrent_streams: u32,
    pub max_header_list_size: u32,
    pub max_resets: u32,
    pub reset_window: f64,
    pub stream_window: u32,
    pub connection_window: u32,
    pub max_control_frames: u32,
    pub max_empty_frames: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_streams: 100,
            max_header_list_size: 64 * 1024,
            max_resets: 200,
            reset_window: 10.0,
            stream_window: 1024 * 1024,
            connection_window: 4 * 1024 * 1024,
            max_control_frames: 1000,
            max_empty_frames: 100,
        }
    }
}

/// What the client's bytes meant, per stream (`edgeward.http2.events`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Request {
        stream_id: u32,
        method: Vec<u8>,
        target: Vec<u8>,
        authority: Vec<u8>,
        scheme: Vec<u8>,
        headers: Vec<Field>,
        end_stream: bool,
    },
    Body {
        stream_id: u32,
        data: Vec<u8>,
        flow_length: u32,
    },
    EndBody {
        stream_id: u32,
        trailers: Vec<Field>,
    },
    StreamReset {
        stream_id: u32,
        error_code: u32,
    },
    WindowOpened {
        stream_id: u32,
    },
    ConnectionEnded {
        error_code: u32,
        reason: String,
    },
}

/// A call the stream's state does not allow (sending on a closed stream,
/// past the window, a frame too large).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub &'static str);

/// h2's receive-window accounting (`h2.windows.WindowManager`): a
/// WINDOW_UPDATE once half the window was consumed and passed on.
#[derive(Debug, Clone)]
struct Window {
    max: i64,
    current: i64,
    processed: i64,
}

impl Window {
    fn new(size: u32) -> Self {
        Window {
            max: i64::from(size),
            current: i64::from(size),
            processed: 0,
        }
    }

    fn consumed(&mut self, size: u32) -> bool {
        self.current -= i64::from(size);
        self.current >= 0
    }

    fn opened(&mut self, size: i64) {
        self.current += size;
        self.max = self.max.max(self.current);
    }

    fn process(&mut self, size: u64) -> u32 {
        self.processed = self
            .processed
            .saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
        if self.processed == 0 {
            return 0;
        }
        let room = self.max - self.current;
        let mut increment = 0;
        if (self.current == 0 && self.processed > 1024.min(self.max / 4))
            || self.processed >= self.max / 2
        {
            increment = self.processed.min(room);
            self.processed = 0;
        }
        self.current += increment;
        u32::try_from(increment.max(0)).unwrap_or(0)
    }
}

#[derive(Debug)]
struct Stream {
    client_done: bool,
    server_done: bool,
    send_window: i64,
    recv: Window,
    /// content-length still to come, when the request declared one
    body_left: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClosedBy {
    Reset,
    End,
}

/// A header block whose CONTINUATION frames are still coming.
struct HeaderBlock {
    stream_id: u32,
    end_stream: bool,
    depends_on: Option<u32>,
    data: Vec<u8>,
    continuations: usize,
}

/// Stop processing the read: the connection ended.
struct Ended;

type Step = Result<(), Ended>;

pub struct Server {
    limits: Limits,
    scheme: Vec<u8>,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    preface_left: usize,
    block: Option<HeaderBlock>,
    decoder: Decoder,
    encoder: Encoder,
    streams: HashMap<u32, Stream>,
    closed: HashMap<u32, ClosedBy>,
    closed_order: VecDeque<u32>,
    highest_inbound: u32,
    conn_recv: Window,
    conn_send: i64,
    remote_initial_window: i64,
    max_outbound_frame: usize,
    resets: u32,
    reset_window_start: f64,
    answers: u32,
    empty: u32,
    receiving: bool,
    /// the early checks ran for the frame at the head of the input
    early_done: bool,
    goaway: Option<u32>,
    goaway_last_stream: u32,
    ended: bool,
}

/// A header list as the caller holds it: (name, value) pairs.
pub type FieldRefs<'a> = &'a [(&'a [u8], &'a [u8])];

impl Server {
    /// `scheme` is the connection's (`http` on cleartext, `https` on TLS):
    /// a request's `:scheme` must be the same.
    pub fn new(limits: Limits, scheme: &[u8]) -> Self {
        Server {
            limits,
            scheme: scheme.to_vec(),
            out: Vec::new(),
            inbuf: Vec::new(),
            preface_left: PREFACE.len(),
            block: None,
            decoder: Decoder::default(),
            encoder: Encoder::default(),
            streams: HashMap::new(),
            closed: HashMap::new(),
            closed_order: VecDeque::new(),
            highest_inbound: 0,
            conn_recv: Window::new(65_535),
            conn_send: 65_535,
            remote_initial_window: 65_535,
            max_outbound_frame: 16_384,
            resets: 0,
            reset_window_start: 0.0,
            answers: 0,
            empty: 0,
            receiving: false,
            early_done: false,
            goaway: None,
            goaway_last_stream: 0,
            ended: false,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn scheme(&self) -> &[u8] {
        &self.scheme
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn highest_inbound_stream_id(&self) -> u32 {
        self.highest_inbound
    }

    /// Our SETTINGS (as h2 sends them) and the larger connection window.
    pub fn initiate(&mut self) {
        let settings: [(u16, u32); 7] = [
            (0x1, 4096),
            (0x2, 0),
            (0x4, self.limits.stream_window),
            (0x5, 16_384),
            (0x8, 0),
            (0x3, self.limits.max_concurrent_streams),
            (0x6, self.limits.max_header_list_size),
        ];
        write_header(&mut self.out, 6 * settings.len(), SETTINGS, 0, 0);
        for (id, value) in settings {
            self.out.extend_from_slice(&id.to_be_bytes());
            self.out.extend_from_slice(&value.to_be_bytes());
        }
        let extra = i64::from(self.limits.connection_window) - 65_535;
        if extra > 0 {
            self.conn_recv.opened(extra);
            self.window_update(0, extra as u32);
        }
    }

    // --- receiving ------------------------------------------------------------

    /// The events of the frames `data` completes.
    pub fn receive_data(&mut self, data: &[u8], now: f64) -> Vec<Event> {
        let mut events = Vec::new();
        if self.ended {
            return events;
        }
        self.receiving = true;
        let mut input = data;
        if self.preface_left > 0 {
            let n = self.preface_left.min(input.len());
            let at = PREFACE.len() - self.preface_left;
            if PREFACE[at..at + n] != input[..n] {
                // not HTTP/2: no GOAWAY (RFC 9113 §3.4 lets us close), as h2
                self.ended = true;
                self.goaway = Some(PROTOCOL_ERROR);
                events.push(Event::ConnectionEnded {
                    error_code: PROTOCOL_ERROR,
                    reason: "protocol error: Invalid HTTP/2 preamble.".into(),
                });
                self.receiving = false;
                return events;
            }
            self.preface_left -= n;
            input = &input[n..];
        }
        if self.inbuf.is_empty() {
            let used = self.process(input, now, &mut events);
            if !self.ended {
                self.inbuf.extend_from_slice(&input[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.inbuf);
            buf.extend_from_slice(input);
            let used = self.process(&buf, now, &mut events);
            if !self.ended {
                buf.drain(..used);
                self.inbuf = buf;
            }
        }
        self.receiving = false;
        events
    }

    /// Handles the whole frames in `buf`; how many bytes they took.
    fn process(&mut self, buf: &[u8], now: f64, events: &mut Vec<Event>) -> usize {
        let mut pos = 0;
        while buf.len() - pos >= 9 {
            let head = &buf[pos..pos + 9];
            let length =
                usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (ftype, flags) = (head[3], head[4]);
            let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            if self.check_header(ftype, stream_id, length, events).is_err() {
                return pos;
            }
            let available = buf.len() - pos - 9;
            // the checks that need only the header (and a pad length) run as
            // soon as it is here, once, whatever the split of the reads
            if !self.early_done {
                if flags & PADDED != 0
                    && length > 0
                    && available == 0
                    && matches!(ftype, DATA | HEADERS)
                {
                    break;
                }
                let first = buf.get(pos + 9).copied();
                if self
                    .early(ftype, flags, stream_id, length, first, now, events)
                    .is_err()
                {
                    return pos;
                }
                self.early_done = true;
            }
            if available < length {
                break;
            }
            let payload = &buf[pos + 9..pos + 9 + length];
            pos += 9 + length;
            self.early_done = false;
            if self
                .frame(ftype, flags, stream_id, payload, now, events)
                .is_err()
            {
                return pos;
            }
            if self.answers > self.limits.max_control_frames {
                self.end(ENHANCE_YOUR_CALM, "too many control frames", events);
                return pos;
            }
        }
        pos
    }

    /// What a frame header alone makes wrong: the stream association of
    /// its type, a length past our SETTINGS_MAX_FRAME_SIZE.
    fn check_header(
        &mut self,
        ftype: u8,
        stream_id: u32,
        length: usize,
        events: &mut Vec<Event>,
    ) -> Step {
        let needs_stream = matches!(
            ftype,
            DATA | HEADERS | PRIORITY | RST_STREAM | PUSH_PROMISE | CONTINUATION
        );
        let needs_zero = matches!(ftype, SETTINGS | PING | GOAWAY);
        if (needs_stream && stream_id == 0) || (needs_zero && stream_id != 0) {
            return self.connection_error(PROTOCOL_ERROR, "frame on the wrong stream", events);
        }
        if length > MAX_INBOUND_FRAME {
            return self.connection_error(FRAME_SIZE_ERROR, "frame too large", events);
        }
        Ok(())
    }

    /// The checks of a frame that its header (and pad length) decide, made
    /// before the rest of it is read: frames that carry nothing (floods,
    /// CVE-2019-9518) and content-length overruns.
    #[allow(clippy::too_many_arguments)]
    fn early(
        &mut self,
        ftype: u8,
        flags: u8,
        stream_id: u32,
        length: usize,
        first: Option<u8>,
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        let content = content_length(ftype, flags, length, first);
        // frames that carry nothing, counted as they arrive (floods, CVE-2019-9518)
        match ftype {
            DATA | HEADERS | CONTINUATION => {
                if content > 0 || (flags & END_STREAM != 0 && ftype != CONTINUATION) {
                    self.empty = 0;
                } else {
                    self.empty += 1;
                }
            }
            PRIORITY | 10.. => self.empty += 1,
            _ => {}
        }
        if self.empty > self.limits.max_empty_frames {
            self.end(ENHANCE_YOUR_CALM, "too many empty frames", events);
            return Err(Ended);
        }
        if ftype == DATA || ftype == HEADERS {
            self.check_content_length(ftype, flags, stream_id, content, now, events)?;
        }
        Ok(())
    }

    fn frame(
        &mut self,
        ftype: u8,
        flags: u8,
        stream_id: u32,
        payload: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        if let Some(block) = &self.block {
            if ftype != CONTINUATION || stream_id != block.stream_id {
                return self.connection_error(
                    PROTOCOL_ERROR,
                    "Invalid frame during header block.",
                    events,
                );
            }
        }
        match ftype {
            DATA => self.data(flags, stream_id, payload, events),
            HEADERS => self.headers(flags, stream_id, payload, now, events),
            CONTINUATION => self.continuation(flags, stream_id, payload, now, events),
            PRIORITY => {
                if payload.len() != 5 {
                    return self.connection_error(FRAME_SIZE_ERROR, "invalid PRIORITY", events);
                }
                self.check_dependency(stream_id, Some(be32(payload) & 0x7fff_ffff), events)
            }
            RST_STREAM => self.rst_stream(stream_id, payload, now, events),
            SETTINGS => self.settings(flags, payload, events),
            PUSH_PROMISE => self.connection_error(PROTOCOL_ERROR, "Received pushed stream", events),
            PING => {
                if payload.len() != 8 {
                    return self.connection_error(FRAME_SIZE_ERROR, "invalid PING", events);
                }
                if flags & ACK == 0 {
                    write_header(&mut self.out, 8, PING, ACK, 0);
                    self.out.extend_from_slice(payload);
                    self.answers += 1;
                }
                Ok(())
            }
            GOAWAY => {
                if payload.len() < 8 {
                    return self.connection_error(FRAME_SIZE_ERROR, "invalid GOAWAY", events);
                }
                self.ended = true;
                events.push(Event::ConnectionEnded {
                    error_code: be32(&payload[4..8]),
                    reason: "client sent GOAWAY".into(),
                });
                Err(Ended)
            }
            WINDOW_UPDATE => self.window_update_received(stream_id, payload, events),
            ALTSVC => {
                // ignored by a server (RFC 7838 §4), but its body must parse,
                // as the reference's frame parser (hyperframe) requires
                let origin = payload
                    .get(..2)
                    .map(|n| usize::from(n[0]) << 8 | usize::from(n[1]));
                match origin {
                    Some(n) if 2 + n <= payload.len() => Ok(()),
                    _ => self.connection_error(FRAME_SIZE_ERROR, "invalid ALTSVC", events),
                }
            }
            _ => Ok(()), // unknown types (and ORIGIN) are ignored (§5.5)
        }
    }

    /// A DATA frame, or trailers, that breaks the stream's declared
    /// content-length resets the stream (a malformed message, §8.1.1)
    /// before the frame is handled.
    fn check_content_length(
        &mut self,
        ftype: u8,
        flags: u8,
        stream_id: u32,
        content: i64,
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Ok(());
        };
        let Some(left) = stream.body_left else {
            return Ok(());
        };
        let size = if ftype == DATA {
            u64::try_from(content.max(0)).unwrap_or(0)
        } else {
            0
        };
        let end = flags & END_STREAM != 0;
        if size > left || (end && size != left) {
            let reset = Event::StreamReset {
                stream_id,
                error_code: PROTOCOL_ERROR,
            };
            return self.malformed(stream_id, now, Some(reset), events);
        }
        stream.body_left = if end { None } else { Some(left - size) };
        Ok(())
    }

    fn data(&mut self, flags: u8, stream_id: u32, payload: &[u8], events: &mut Vec<Event>) -> Step {
        let (start, end) = self.padding(flags, payload, events)?;
        let flow = payload.len() as u32;
        if !self.conn_recv.consumed(flow) {
            return self.connection_error(FLOW_CONTROL_ERROR, "connection window exceeded", events);
        }
        let highest = self.highest_inbound;
        match self.streams.get_mut(&stream_id) {
            Some(stream) if stream.client_done => {
                // DATA after the client's END_STREAM: a stream error (§5.1)
                self.closed_data(flow);
                self.close_with_reset(stream_id, STREAM_CLOSED);
                events.push(Event::StreamReset {
                    stream_id,
                    error_code: STREAM_CLOSED,
                });
            }
            Some(stream) => {
                if !stream.recv.consumed(flow) {
                    return self.connection_error(
                        FLOW_CONTROL_ERROR,
                        "stream window exceeded",
                        events,
                    );
                }
                events.push(Event::Body {
                    stream_id,
                    data: payload[start..end].to_vec(),
                    flow_length: flow,
                });
                if flags & END_STREAM != 0 {
                    self.client_done(stream_id);
                    events.push(Event::EndBody {
                        stream_id,
                        trailers: Vec::new(),
                    });
                }
            }
            None if Self::idle(stream_id, highest) => {
                return self.connection_error(PROTOCOL_ERROR, "DATA on an idle stream", events);
            }
            None => {
                self.closed_data(flow);
                self.rst(stream_id, STREAM_CLOSED);
            }
        }
        Ok(())
    }

    /// DATA on a closed stream still counts against the connection window:
    /// it is given back at once.
    fn closed_data(&mut self, flow: u32) {
        let increment = self.conn_recv.process(u64::from(flow));
        if increment > 0 {
            self.window_update(0, increment);
        }
    }

    /// Where the data of a DATA frame is in its payload, padding aside.
    fn padding(
        &mut self,
        flags: u8,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(usize, usize), Ended> {
        if flags & PADDED == 0 {
            return Ok((0, payload.len()));
        }
        let Some(&pad) = payload.first() else {
            return self
                .connection_error(FRAME_SIZE_ERROR, "Invalid Padding data", events)
                .map(|()| (0, 0));
        };
        let pad = usize::from(pad);
        if pad > 0 && pad >= payload.len() {
            return self
                .connection_error(
                    PROTOCOL_ERROR,
                    "Received frame with invalid padding.",
                    events,
                )
                .map(|()| (0, 0));
        }
        Ok((1, payload.len() - pad))
    }

    fn headers(
        &mut self,
        flags: u8,
        stream_id: u32,
        payload: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        let mut start = 0;
        let mut pad = 0;
        if flags & PADDED != 0 {
            if payload.is_empty() {
                return self.connection_error(FRAME_SIZE_ERROR, "invalid padding", events);
            }
            pad = usize::from(payload[0]);
            start = 1;
        }
        let mut depends_on = None;
        if flags & PRIORITY_FLAG != 0 {
            if payload.len() < start + 5 {
                return self.connection_error(FRAME_SIZE_ERROR, "invalid priority", events);
            }
            depends_on = Some(be32(&payload[start..start + 4]) & 0x7fff_ffff);
            start += 5;
        }
        // as hyperframe counts it for HEADERS: against what follows the
        // pad-length byte (for DATA, against the whole payload)
        if pad > 0 && pad >= payload.len() - 1 {
            return self.connection_error(
                PROTOCOL_ERROR,
                "Received frame with invalid padding.",
                events,
            );
        }
        let end = payload.len() - pad;
        let fragment = if end > start {
            &payload[start..end]
        } else {
            &[][..]
        };
        let end_stream = flags & END_STREAM != 0;
        if flags & END_HEADERS != 0 {
            return self.header_block(stream_id, end_stream, depends_on, fragment, now, events);
        }
        self.block = Some(HeaderBlock {
            stream_id,
            end_stream,
            depends_on,
            data: fragment.to_vec(),
            continuations: 0,
        });
        Ok(())
    }

    /// A CONTINUATION outside a header block is a connection error whatever
    /// the stream's state (RFC 9113 §6.10).
    fn naked_continuation(&mut self, events: &mut Vec<Event>) -> Step {
        self.connection_error(
            PROTOCOL_ERROR,
            "Received unexpected CONTINUATION frame",
            events,
        )
    }

    fn continuation(
        &mut self,
        flags: u8,
        stream_id: u32,
        payload: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        let Some(block) = self.block.as_mut() else {
            return self.naked_continuation(events);
        };
        block.continuations += 1;
        if block.continuations > MAX_CONTINUATIONS {
            return self.connection_error(
                PROTOCOL_ERROR,
                "Too many continuation frames received.",
                events,
            );
        }
        block.data.extend_from_slice(payload);
        if flags & END_HEADERS == 0 {
            return Ok(());
        }
        let Some(block) = self.block.take() else {
            return Ok(());
        };
        debug_assert_eq!(block.stream_id, stream_id);
        self.header_block(
            block.stream_id,
            block.end_stream,
            block.depends_on,
            &block.data,
            now,
            events,
        )
    }

    fn check_dependency(
        &mut self,
        stream_id: u32,
        depends_on: Option<u32>,
        events: &mut Vec<Event>,
    ) -> Step {
        if depends_on == Some(stream_id) {
            return self.connection_error(
                PROTOCOL_ERROR,
                "a stream may not depend on itself",
                events,
            );
        }
        Ok(())
    }

    fn header_block(
        &mut self,
        stream_id: u32,
        end_stream: bool,
        depends_on: Option<u32>,
        block: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        // decoded first, whatever follows: the decoder's table must follow the client's
        let fields = match self
            .decoder
            .decode(block, self.limits.max_header_list_size as usize)
        {
            Ok(fields) => fields,
            Err(DecodeError::Invalid { at, why }) => {
                return self.connection_error(
                    PROTOCOL_ERROR,
                    &format!("Error decoding header block: {why} (byte {at})"),
                    events,
                );
            }
            Err(DecodeError::TooLarge) => {
                return self.connection_error(ENHANCE_YOUR_CALM, "Oversized header block", events);
            }
        };
        if informational(&fields) {
            return self.connection_error(
                PROTOCOL_ERROR,
                "informational headers from a client",
                events,
            );
        }
        match self.streams.get(&stream_id) {
            Some(stream) if stream.client_done => {
                self.close_with_reset(stream_id, STREAM_CLOSED);
                events.push(Event::StreamReset {
                    stream_id,
                    error_code: STREAM_CLOSED,
                });
                Ok(())
            }
            Some(_) => {
                self.check_content_length_fields(&fields, events)?;
                if !end_stream {
                    return self.connection_error(
                        PROTOCOL_ERROR,
                        "Trailers must have END_STREAM set",
                        events,
                    );
                }
                self.check_dependency(stream_id, depends_on, events)?;
                match fields::parse_trailers(fields) {
                    Ok(trailers) => {
                        self.client_done(stream_id);
                        events.push(Event::EndBody {
                            stream_id,
                            trailers,
                        });
                        Ok(())
                    }
                    Err(_) => {
                        let reset = Event::StreamReset {
                            stream_id,
                            error_code: PROTOCOL_ERROR,
                        };
                        self.malformed(stream_id, now, Some(reset), events)
                    }
                }
            }
            None if stream_id > self.highest_inbound => {
                if stream_id.is_multiple_of(2) {
                    return self.connection_error(
                        PROTOCOL_ERROR,
                        "Invalid stream ID for peer.",
                        events,
                    );
                }
                self.highest_inbound = stream_id;
                self.check_content_length_fields(&fields, events)?;
                self.check_dependency(stream_id, depends_on, events)?;
                self.request(stream_id, fields, end_stream, now, events)
            }
            None => match self.closed.get(&stream_id) {
                Some(ClosedBy::Reset) => {
                    self.rst(stream_id, STREAM_CLOSED);
                    Ok(())
                }
                Some(ClosedBy::End) => {
                    self.connection_error(STREAM_CLOSED, "HEADERS on a closed stream", events)
                }
                None => self.connection_error(
                    PROTOCOL_ERROR,
                    "HEADERS on a stream closed implicitly",
                    events,
                ),
            },
        }
    }

    fn request(
        &mut self,
        stream_id: u32,
        fields: Vec<Field>,
        end_stream: bool,
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        if self.goaway.is_some() {
            // opened after our GOAWAY: not processed (§6.8)
            self.close_with_reset(stream_id, REFUSED_STREAM);
            return Ok(());
        }
        if self.streams.len() >= self.limits.max_concurrent_streams as usize {
            // past the advertised limit: a stream error (§5.1.2), counted
            if self.too_many_resets(now) {
                self.end(ENHANCE_YOUR_CALM, "too many stream resets", events);
                return Err(Ended);
            }
            self.close_with_reset(stream_id, REFUSED_STREAM);
            return Ok(());
        }
        let request = match fields::parse_request(fields, &self.scheme, end_stream) {
            Ok(request) => request,
            Err(_) => return self.malformed(stream_id, now, None, events),
        };
        let body_left = match () {
            _ if end_stream => None,
            _ if request.method == b"HEAD" => Some(0),
            _ => request.content_length,
        };
        self.streams.insert(
            stream_id,
            Stream {
                client_done: end_stream,
                server_done: false,
                send_window: self.remote_initial_window,
                recv: Window::new(self.limits.stream_window),
                body_left,
            },
        );
        events.push(Event::Request {
            stream_id,
            method: request.method,
            target: request.path,
            authority: request.authority,
            scheme: request.scheme,
            headers: request.headers,
            end_stream,
        });
        Ok(())
    }

    /// A malformed message resets its stream; such resets count like the
    /// client's own (CVE-2025-8671, "MadeYouReset").
    fn malformed(
        &mut self,
        stream_id: u32,
        now: f64,
        event: Option<Event>,
        events: &mut Vec<Event>,
    ) -> Step {
        if self.too_many_resets(now) {
            self.end(ENHANCE_YOUR_CALM, "too many stream resets", events);
            return Err(Ended);
        }
        self.close_with_reset(stream_id, PROTOCOL_ERROR);
        events.extend(event);
        Ok(())
    }

    /// A content-length field that is not all digits, in a request's
    /// headers or its trailers, is a connection error (h2's rule).
    fn check_content_length_fields(&mut self, fields: &[Field], events: &mut Vec<Event>) -> Step {
        let declared = fields.iter().filter(|(n, _)| n == b"content-length");
        if declared
            .clone()
            .any(|(_, v)| !fields::content_length_accepted(v))
        {
            return self.connection_error(PROTOCOL_ERROR, "Invalid content-length header", events);
        }
        Ok(())
    }

    /// A stream the client never opened: past the highest it did, or even
    /// (ours, and we push none). A frame other than HEADERS and PRIORITY on
    /// it is a connection error (h2's `NoSuchStreamError`).
    fn idle(stream_id: u32, highest_inbound: u32) -> bool {
        stream_id.is_multiple_of(2) || stream_id > highest_inbound
    }

    fn rst_stream(
        &mut self,
        stream_id: u32,
        payload: &[u8],
        now: f64,
        events: &mut Vec<Event>,
    ) -> Step {
        if payload.len() != 4 {
            return self.connection_error(FRAME_SIZE_ERROR, "invalid RST_STREAM", events);
        }
        if self.streams.remove(&stream_id).is_none() {
            // h2's rule: an error on stream 0 or before any stream was opened
            // (its connection is still idle); else nothing to do
            if stream_id == 0 || self.highest_inbound == 0 {
                return self.connection_error(
                    PROTOCOL_ERROR,
                    "RST_STREAM on an idle stream",
                    events,
                );
            }
            return Ok(());
        }
        self.remember_closed(stream_id, ClosedBy::Reset);
        if self.too_many_resets(now) {
            self.end(ENHANCE_YOUR_CALM, "too many stream resets", events);
            return Err(Ended);
        }
        events.push(Event::StreamReset {
            stream_id,
            error_code: be32(payload),
        });
        Ok(())
    }

    fn settings(&mut self, flags: u8, payload: &[u8], events: &mut Vec<Event>) -> Step {
        if flags & ACK != 0 {
            if !payload.is_empty() {
                return self.connection_error(
                    PROTOCOL_ERROR,
                    "SETTINGS ack with a payload",
                    events,
                );
            }
            return Ok(()); // our settings took effect when we sent them
        }
        if !payload.len().is_multiple_of(6) {
            return self.connection_error(FRAME_SIZE_ERROR, "invalid SETTINGS", events);
        }
        // A setting repeated in one frame counts with its last value (as the
        // reference, h2 through hyperframe, reads it): an earlier value never
        // takes effect, so it is neither validated nor applied.
        let mut settings: Vec<(u16, u32)> = Vec::with_capacity(payload.len() / 6);
        for c in payload.chunks_exact(6) {
            let (id, value) = (u16::from_be_bytes([c[0], c[1]]), be32(&c[2..6]));
            match settings.iter_mut().find(|(seen, _)| *seen == id) {
                Some(entry) => entry.1 = value,
                None => settings.push((id, value)),
            }
        }
        for &(id, value) in &settings {
            let code = match id {
                0x2 | 0x8 if value > 1 => PROTOCOL_ERROR,
                0x4 if i64::from(value) > MAX_WINDOW => FLOW_CONTROL_ERROR,
                0x5 if !(16_384..=16_777_215).contains(&value) => PROTOCOL_ERROR,
                _ => continue,
            };
            return self.connection_error(code, "invalid setting value", events);
        }
        for (id, value) in settings {
            match id {
                0x1 => self.encoder.table_size_changed(),
                0x4 => {
                    let delta = i64::from(value) - self.remote_initial_window;
                    self.remote_initial_window = i64::from(value);
                    for stream in self.streams.values_mut() {
                        stream.send_window += delta;
                        if stream.send_window > MAX_WINDOW {
                            return self.connection_error(
                                FLOW_CONTROL_ERROR,
                                "window overflow",
                                events,
                            );
                        }
                    }
                }
                0x5 => self.max_outbound_frame = value as usize,
                _ => {}
            }
        }
        write_header(&mut self.out, 0, SETTINGS, ACK, 0);
        self.answers += 1;
        // INITIAL_WINDOW_SIZE may have grown every stream's window
        events.push(Event::WindowOpened { stream_id: 0 });
        Ok(())
    }

    fn window_update_received(
        &mut self,
        stream_id: u32,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Step {
        if payload.len() != 4 {
            return self.connection_error(FRAME_SIZE_ERROR, "invalid WINDOW_UPDATE", events);
        }
        let increment = i64::from(be32(payload));
        if increment == 0 || increment > MAX_WINDOW {
            return self.connection_error(
                PROTOCOL_ERROR,
                "invalid WINDOW_UPDATE increment",
                events,
            );
        }
        if stream_id == 0 {
            self.conn_send += increment;
            if self.conn_send > MAX_WINDOW {
                return self.connection_error(
                    FLOW_CONTROL_ERROR,
                    "connection window overflow",
                    events,
                );
            }
            events.push(Event::WindowOpened { stream_id: 0 });
            return Ok(());
        }
        let highest = self.highest_inbound;
        match self.streams.get_mut(&stream_id) {
            Some(stream) => {
                stream.send_window += increment;
                if stream.send_window > MAX_WINDOW {
                    self.close_with_reset(stream_id, FLOW_CONTROL_ERROR);
                    events.push(Event::StreamReset {
                        stream_id,
                        error_code: FLOW_CONTROL_ERROR,
                    });
                } else {
                    events.push(Event::WindowOpened { stream_id });
                }
                Ok(())
            }
            None if Self::idle(stream_id, highest) => {
                self.connection_error(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream", events)
            }
            None => Ok(()),
        }
    }

    // --- ending ---------------------------------------------------------------

    /// A connection error found while reading: GOAWAY with its code (once).
    fn connection_error(&mut self, code: u32, reason: &str, events: &mut Vec<Event>) -> Step {
        if !self.ended {
            let last = if self.goaway.is_some() {
                self.goaway_last_stream
            } else {
                self.highest_inbound
            };
            self.write_goaway(last, code);
            self.goaway = Some(code);
            self.ended = true;
        }
        events.push(Event::ConnectionEnded {
            error_code: code,
            reason: format!("protocol error: {reason}"),
        });
        Err(Ended)
    }

    /// A limit of ours: GOAWAY unless one with this meaning was sent.
    fn end(&mut self, code: u32, reason: &str, events: &mut Vec<Event>) {
        if !self.ended {
            if self.may_goaway(code) {
                let last = if self.goaway.is_some() {
                    self.goaway_last_stream
                } else {
                    self.highest_inbound
                };
                self.write_goaway(last, code);
                self.goaway = Some(code);
            }
            self.ended = true;
        }
        events.push(Event::ConnectionEnded {
            error_code: code,
            reason: reason.into(),
        });
    }

    /// At most one GOAWAY per way the connection ends: a graceful one, then
    /// perhaps one with an error code (§6.8).
    fn may_goaway(&self, code: u32) -> bool {
        match self.goaway {
            None => true,
            Some(sent) => sent == 0 && code != 0,
        }
    }

    fn too_many_resets(&mut self, now: f64) -> bool {
        if now - self.reset_window_start > self.limits.reset_window {
            self.reset_window_start = now;
            self.resets = 0;
        }
        self.resets += 1;
        self.resets > self.limits.max_resets
    }

    // --- the caller's side ----------------------------------------------------

    /// Everything queued to send, taken.
    pub fn data_to_send(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The caller wrote everything it took: no answer is outstanding.
    pub fn all_sent(&mut self) {
        self.answers = 0;
    }

    /// No new streams; those open may finish. Sent once (a graceful GOAWAY
    /// may be followed by one with an error code).
    pub fn goaway(&mut self, code: u32) {
        if self.ended || !self.may_goaway(code) {
            return;
        }
        let last = if self.goaway.is_some() {
            self.goaway_last_stream
        } else {
            self.highest_inbound
        };
        self.goaway_last_stream = last;
        self.write_goaway(last, code);
        self.goaway = Some(code);
    }

    fn sendable(&self, stream_id: u32) -> Result<&Stream, SendError> {
        match self.streams.get(&stream_id) {
            Some(stream) if !stream.server_done => Ok(stream),
            _ => Err(SendError("the stream is closed")),
        }
    }

    /// The response head; with `end_stream` it is the whole response (one
    /// HEADERS frame with END_STREAM: no body, no trailers, e.g. a
    /// trailers-only gRPC answer).
    pub fn send_headers(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> Result<(), SendError> {
        if self.ended {
            return Ok(());
        }
        self.sendable(stream_id)?;
        let mut block = Vec::with_capacity(64);
        self.encoder.begin(&mut block);
        hpack::encode_field(&mut block, b":status", status.to_string().as_bytes());
        for (name, value) in headers {
            hpack::encode_field(&mut block, name, value);
        }
        self.write_headers(stream_id, &block, end_stream);
        if end_stream {
            self.server_done(stream_id);
        }
        Ok(())
    }

    /// How many body bytes may be sent on the stream now; -1 once it is closed.
    pub fn send_window(&self, stream_id: u32) -> i64 {
        match self.sendable(stream_id) {
            Ok(stream) => stream
                .send_window
                .min(self.conn_send)
                .min(self.max_outbound_frame as i64)
                .max(0),
            Err(_) => -1,
        }
    }

    pub fn send_data(&mut self, stream_id: u32, data: &[u8]) -> Result<(), SendError> {
        self.write_data(stream_id, data, false)
    }

    fn write_data(
        &mut self,
        stream_id: u32,
        data: &[u8],
        end_stream: bool,
    ) -> Result<(), SendError> {
        if self.ended {
            return Ok(());
        }
        let size = data.len() as i64;
        let max_frame = self.max_outbound_frame as i64;
        let conn_send = self.conn_send;
        let stream = match self.streams.get_mut(&stream_id) {
            Some(stream) if !stream.server_done => stream,
            _ => return Err(SendError("the stream is closed")),
        };
        if size > stream.send_window.min(conn_send) {
            return Err(SendError("more data than the flow-control window"));
        }
        if size > max_frame {
            return Err(SendError("a frame larger than the client's maximum"));
        }
        stream.send_window -= size;
        self.conn_send -= size;
        write_header(
            &mut self.out,
            data.len(),
            DATA,
            if end_stream { END_STREAM } else { 0 },
            stream_id,
        );
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// Ends our side: `data` (within the window) carries END_STREAM, unless
    /// trailers follow.
    pub fn end_stream(
        &mut self,
        stream_id: u32,
        trailers: &[(&[u8], &[u8])],
        data: &[u8],
    ) -> Result<(), SendError> {
        if self.ended {
            return Ok(());
        }
        self.sendable(stream_id)?;
        if !data.is_empty() || trailers.is_empty() {
            self.write_data(stream_id, data, trailers.is_empty())?;
        }
        if !trailers.is_empty() {
            let mut block = Vec::with_capacity(64);
            self.encoder.begin(&mut block);
            for (name, value) in trailers {
                hpack::encode_field(&mut block, name, value);
            }
            self.write_headers(stream_id, &block, true);
        }
        self.server_done(stream_id);
        Ok(())
    }

    /// The rest of a response in one call: the head unless it was sent
    /// already, `data` with END_STREAM (or with trailers after it). `Ok(false)`,
    /// and nothing sent, when `data` does not fit the send window; the caller
    /// then sends the head alone and the rest once the client grants window.
    pub fn finish_response(
        &mut self,
        stream_id: u32,
        head: Option<(u16, FieldRefs<'_>)>,
        data: &[u8],
        trailers: &[(&[u8], &[u8])],
    ) -> Result<bool, SendError> {
        if self.ended {
            return Ok(true);
        }
        if !data.is_empty() && self.send_window(stream_id) < data.len() as i64 {
            return Ok(false);
        }
        if let Some((status, headers)) = head {
            let alone = data.is_empty() && trailers.is_empty();
            self.send_headers(stream_id, status, headers, alone)?;
            if alone {
                return Ok(true);
            }
        }
        self.end_stream(stream_id, trailers, data)?;
        Ok(true)
    }

    /// Our side of the stream ended; with the client's, it is closed.
    fn server_done(&mut self, stream_id: u32) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            stream.server_done = true;
            if stream.client_done {
                self.streams.remove(&stream_id);
                self.remember_closed(stream_id, ClosedBy::End);
            }
        }
    }

    /// The caller passed `flow_length` body bytes on: reopen the windows.
    pub fn consumed(&mut self, stream_id: u32, flow_length: u64) {
        if flow_length == 0 || self.ended {
            return;
        }
        let increment = self.conn_recv.process(flow_length);
        if increment > 0 {
            self.window_update(0, increment);
        }
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            let increment = stream.recv.process(flow_length);
            if increment > 0 {
                self.window_update(stream_id, increment);
            }
        }
    }

    /// Resets an open stream (nothing for one already closed).
    pub fn reset(&mut self, stream_id: u32, code: u32) {
        if !self.ended && self.streams.contains_key(&stream_id) {
            self.close_with_reset(stream_id, code);
        }
    }

    // --- internals ------------------------------------------------------------

    fn client_done(&mut self, stream_id: u32) {
        if let Some(stream) = self.streams.get_mut(&stream_id) {
            stream.client_done = true;
            if stream.server_done {
                self.streams.remove(&stream_id);
                self.remember_closed(stream_id, ClosedBy::End);
            }
        }
    }

    fn close_with_reset(&mut self, stream_id: u32, code: u32) {
        self.streams.remove(&stream_id);
        self.remember_closed(stream_id, ClosedBy::Reset);
        self.rst(stream_id, code);
    }

    fn remember_closed(&mut self, stream_id: u32, how: ClosedBy) {
        if self.closed.insert(stream_id, how).is_none() {
            self.closed_order.push_back(stream_id);
            if self.closed_order.len() > CLOSED_REMEMBERED {
                if let Some(old) = self.closed_order.pop_front() {
                    self.closed.remove(&old);
                }
            }
        }
    }

    fn rst(&mut self, stream_id: u32, code: u32) {
        write_header(&mut self.out, 4, RST_STREAM, 0, stream_id);
        self.out.extend_from_slice(&code.to_be_bytes());
        if self.receiving {
            self.answers += 1;
        }
    }

    fn window_update(&mut self, stream_id: u32, increment: u32) {
        write_header(&mut self.out, 4, WINDOW_UPDATE, 0, stream_id);
        self.out.extend_from_slice(&increment.to_be_bytes());
    }

    fn write_goaway(&mut self, last_stream: u32, code: u32) {
        write_header(&mut self.out, 8, GOAWAY, 0, 0);
        self.out.extend_from_slice(&last_stream.to_be_bytes());
        self.out.extend_from_slice(&code.to_be_bytes());
    }

    /// A header block as HEADERS and CONTINUATION frames of the client's
    /// maximum size.
    fn write_headers(&mut self, stream_id: u32, block: &[u8], end_stream: bool) {
        let max = self.max_outbound_frame;
        let mut chunks = block.chunks(max).peekable();
        let first = chunks.next().unwrap_or(&[]);
        let mut flags = if end_stream { END_STREAM } else { 0 };
        if chunks.peek().is_none() {
            flags |= END_HEADERS;
        }
        write_header(&mut self.out, first.len(), HEADERS, flags, stream_id);
        self.out.extend_from_slice(first);
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                END_HEADERS
            } else {
                0
            };
            write_header(&mut self.out, chunk.len(), CONTINUATION, flags, stream_id);
            self.out.extend_from_slice(chunk);
        }
    }
}

fn write_header(out: &mut Vec<u8>, length: usize, ftype: u8, flags: u8, stream_id: u32) {
    out.extend_from_slice(&[
        (length >> 16) as u8,
        (length >> 8) as u8,
        length as u8,
        ftype,
        flags,
    ]);
    out.extend_from_slice(&stream_id.to_be_bytes());
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The payload of a DATA or HEADERS frame without padding and priority
/// fields (negative when the padding is invalid); a CONTINUATION's length.
fn content_length(ftype: u8, flags: u8, length: usize, first: Option<u8>) -> i64 {
    let mut content = length as i64;
    if ftype == CONTINUATION {
        return content;
    }
    if let (true, Some(pad)) = (flags & PADDED != 0 && length > 0, first) {
        content -= 1 + i64::from(pad);
    }
    if ftype == HEADERS && flags & PRIORITY_FLAG != 0 {
        content -= 5;
    }
    content
}

/// A block whose leading pseudo-headers say `:status: 1xx` (h2 refuses such
/// "informational" blocks from a client as a connection error).
fn informational(fields: &[Field]) -> bool {
    for (name, value) in fields {
        if name.first() != Some(&b':') {
            return false;
        }
        if name == b":status" {
            return value.first() == Some(&b'1');
        }
    }
    false
}
