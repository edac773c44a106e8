//! HPACK for the server side (RFC 7541): decoding with `loona-hpack`, and a
//! stateless encoder of our own that never uses the dynamic table (the twin
//! of `edgeward.http2.compression.StatelessEncoder`): every field is a static
//! index or a literal without indexing, credentials are never indexed, names
//! are lower-cased, values stripped, connection-specific fields dropped.

use loona_hpack::decoder::DecoderError;
use loona_hpack::Decoder as Inner;

use super::fields::Field;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Broken HPACK (a connection error; h2 calls it PROTOCOL_ERROR).
    Invalid,
    /// The decoded list is over the limit (h2: ENHANCE_YOUR_CALM).
    TooLarge,
}

/// The connection's decoder: its dynamic table is at most 4096 bytes (our
/// SETTINGS_HEADER_TABLE_SIZE stays the default).
pub struct Decoder {
    inner: Inner<'static>,
}

impl Default for Decoder {
    fn default() -> Self {
        let mut inner = Inner::new();
        inner.set_max_allowed_table_size(4096);
        Decoder { inner }
    }
}

impl Decoder {
    /// Decodes one whole block; the list counts as RFC 7541 §4.1 sizes
    /// entries (name + value + 32) against `max_list_size`.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list_size: usize,
    ) -> Result<Vec<Field>, DecodeError> {
        let mut fields = Vec::new();
        let mut size = 0usize;
        let mut too_large = false;
        let outcome = self.inner.decode_with_cb(block, |name, value| {
            size = size.saturating_add(name.len() + value.len() + 32);
            if size > max_list_size {
                too_large = true;
            } else {
                fields.push((name.into_owned(), value.into_owned()));
            }
        });
        match outcome {
            _ if too_large => Err(DecodeError::TooLarge),
            // a block that ends with a table size update (or is only one) is
            // valid HPACK, as the reference's decoder (hpack) takes it; the
            // update was applied before loona-hpack complained
            Ok(()) | Err(DecoderError::SizeUpdateAtEnd) => Ok(fields),
            Err(_) => Err(DecodeError::Invalid),
        }
    }
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

const NEVER_INDEXED: [&[u8]; 4] = [
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"set-cookie",
];

const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// (first index of the name, index of the whole field) in the static table.
fn static_lookup(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let mut first = None;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if *n == name {
            first.get_or_insert(i + 1);
            if *v == value {
                return (first, Some(i + 1));
            }
        }
    }
    (first, None)
}

/// RFC 7541 §5.1.
pub fn encode_integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn encode_string(out: &mut Vec<u8>, data: &[u8]) {
    encode_integer(out, 0, 7, data.len());
    out.extend_from_slice(data);
}

/// One field, normalised; nothing for a connection-specific field.
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let lower;
    let name = if name.iter().any(u8::is_ascii_uppercase) {
        lower = name.to_ascii_lowercase();
        &lower[..]
    } else {
        name
    };
    let start = value
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |p| p + 1);
    let value = &value[start..end];
    let never = NEVER_INDEXED.contains(&name);
    if !never && CONNECTION_SPECIFIC.contains(&name) {
        return;
    }
    let (name_index, full) = static_lookup(name, value);
    if let (false, Some(index)) = (never, full) {
        out.push(0x80 | index as u8);
        return;
    }
    let flags = if never { 0x10 } else { 0x00 };
    match name_index {
        Some(index) => encode_integer(out, flags, 4, index),
        None => {
            out.push(flags);
            encode_string(out, name);
        }
    }
    encode_string(out, value);
}

/// The encoder of one connection: stateless but for announcing "dynamic
/// table size 0" in the first block and after the client changed
/// SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §4.2).
pub struct Encoder {
    announce: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { announce: true }
    }
}

impl Encoder {
    pub fn table_size_changed(&mut self) {
        self.announce = true;
    }

    pub fn begin(&mut self, out: &mut Vec<u8>) {
        if self.announce {
            self.announce = false;
            out.push(0x20);
        }
    }
}
