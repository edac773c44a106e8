//! HPACK for the server side (RFC 7541): a decoder of our own (static and
//! dynamic table, Huffman through `huffman`), and a stateless encoder that
//! never uses the dynamic table (the twin of
//! `edgeward.http2.compression.StatelessEncoder`): every field is a static
//! index or a literal without indexing, credentials are never indexed, names
//! are lower-cased, values stripped, connection-specific fields dropped.
//!
//! The decoder takes and refuses what the reference's decoder (Python's
//! `hpack`, under h2) does, so both servers end a connection alike: a table
//! size update is valid only before the block's first field (several are
//! taken, one may end the block) and at most our SETTINGS_HEADER_TABLE_SIZE;
//! an integer has at most 5 continuation bytes; index 0, an index past the
//! tables, a string longer than the block, EOS or bad padding in a Huffman
//! string are errors. We decode ourselves because `loona-hpack` built a
//! HashMap Huffman decoder for every Huffman string (docs/http2.md).

use std::collections::VecDeque;

use super::fields::Field;
use super::huffman;

/// Our SETTINGS_HEADER_TABLE_SIZE (the default, never changed): the largest
/// dynamic table a client's size update may ask for.
pub const MAX_TABLE_SIZE: usize = 4096;

/// An integer's continuation bytes (§5.1 leaves the limit to us): as many
/// as the reference's `hpack` takes, so values stay below 2^36.
const MAX_CONTINUATION_BYTES: u32 = 5;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Broken HPACK at byte `at` of the block (a connection error; h2 calls
    /// it PROTOCOL_ERROR).
    Invalid { at: usize, why: &'static str },
    /// The decoded list is over the limit (h2: ENHANCE_YOUR_CALM).
    TooLarge,
}

/// RFC 7541 §4.1: what an entry counts for, in the table and in the list.
fn entry_size(field: &Field) -> usize {
    field.0.len() + field.1.len() + 32
}

/// The dynamic table (§2.3.2, §4): newest entry first.
struct DynamicTable {
    entries: VecDeque<Field>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    /// §4.4: older entries make room; an entry larger than the table empties it.
    fn add(&mut self, field: Field) {
        let size = entry_size(&field);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.size += size;
        self.entries.push_front(field);
        self.evict();
    }

    /// §4.3: a size update evicts what no longer fits.
    fn resize(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            match self.entries.pop_back() {
                Some(field) => self.size -= entry_size(&field),
                None => self.size = 0,
            }
        }
    }
}

/// A position in one block, for reading its primitives (§5).
struct Reader<'a> {
    block: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn invalid<T>(&self, why: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError::Invalid { at: self.pos, why })
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.block.get(self.pos) {
            Some(&byte) => {
                self.pos += 1;
                Ok(byte)
            }
            None => self.invalid("the block ends inside a field"),
        }
    }

    /// §5.1: an integer in the low `prefix_bits` of the next byte, and in
    /// continuation bytes if they are all ones.
    fn integer(&mut self, prefix_bits: u32) -> Result<usize, DecodeError> {
        let max = (1u8 << prefix_bits) - 1;
        let prefix = self.byte()? & max;
        if prefix < max {
            return Ok(usize::from(prefix));
        }
        let mut value = u64::from(max);
        for shift in (0..MAX_CONTINUATION_BYTES).map(|i| 7 * i) {
            let byte = self.byte()?;
            value += u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return match usize::try_from(value) {
                    Ok(value) => Ok(value),
                    Err(_) => self.invalid("integer too large"),
                };
            }
        }
        self.invalid("integer too long")
    }

    /// §5.2: a string literal, raw or Huffman-coded.
    fn string(&mut self) -> Result<Vec<u8>, DecodeError> {
        let huffman = self.block.get(self.pos).is_some_and(|b| b & 0x80 != 0);
        let length = self.integer(7)?;
        let start = self.pos;
        let Some(raw) = start
            .checked_add(length)
            .and_then(|end| self.block.get(start..end))
        else {
            return self.invalid("a string runs past the block");
        };
        self.pos += length;
        if !huffman {
            return Ok(raw.to_vec());
        }
        let mut out = Vec::new();
        match huffman::decode(raw, &mut out) {
            Ok(()) => Ok(out),
            Err(huffman::InvalidHuffman) => Err(DecodeError::Invalid {
                at: start,
                why: "invalid Huffman string",
            }),
        }
    }
}

/// The connection's decoder: its dynamic table is at most `MAX_TABLE_SIZE`.
pub struct Decoder {
    table: DynamicTable,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: DynamicTable {
                entries: VecDeque::new(),
                size: 0,
                max_size: MAX_TABLE_SIZE,
            },
        }
    }
}

impl Decoder {
    /// Decodes one whole block; the list counts as RFC 7541 §4.1 sizes
    /// entries (name + value + 32) against `max_list_size`. After an error
    /// the table is undefined: the connection ends.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list_size: usize,
    ) -> Result<Vec<Field>, DecodeError> {
        let mut reader = Reader { block, pos: 0 };
        let mut fields = Vec::new();
        let mut list_size = 0usize;
        while let Some(&first) = block.get(reader.pos) {
            let at = reader.pos;
            let field = if first & 0x80 != 0 {
                // §6.1 indexed field
                let index = reader.integer(7)?;
                let (name, value) = self.entry(index, at)?;
                (name.to_vec(), value.to_vec())
            } else if first & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing
                let field = self.literal(&mut reader, 6)?;
                self.table.add(field.clone());
                field
            } else if first & 0x20 != 0 {
                // §6.3 dynamic table size update, §4.2 at the start of a block
                if !fields.is_empty() {
                    return reader.invalid("table size update after a field");
                }
                let max_size = reader.integer(5)?;
                if max_size > MAX_TABLE_SIZE {
                    return Err(DecodeError::Invalid {
                        at,
                        why: "table size update above our limit",
                    });
                }
                self.table.resize(max_size);
                continue;
            } else {
                // §6.2.2 without indexing (0000), §6.2.3 never indexed (0001):
                // alike here: our encoder never indexes, credentials never-indexed
                self.literal(&mut reader, 4)?
            };
            list_size = list_size.saturating_add(entry_size(&field));
            if list_size > max_list_size {
                return Err(DecodeError::TooLarge);
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// §2.3.3: index 1 to 61 is the static table, then the dynamic one.
    fn entry(&self, index: usize, at: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        let dynamic = match index.checked_sub(STATIC_TABLE.len() + 1) {
            Some(dynamic) => dynamic,
            None if index > 0 => return Ok(STATIC_TABLE[index - 1]),
            None => return Err(DecodeError::Invalid { at, why: "index 0" }),
        };
        match self.table.entries.get(dynamic) {
            Some((name, value)) => Ok((name, value)),
            None => Err(DecodeError::Invalid {
                at,
                why: "index past the tables",
            }),
        }
    }

    /// §6.2: a name (indexed in `prefix_bits`, or a literal after a zero
    /// index) and a literal value.
    fn literal(&self, reader: &mut Reader<'_>, prefix_bits: u32) -> Result<Field, DecodeError> {
        let at = reader.pos;
        let index = reader.integer(prefix_bits)?;
        let name = if index == 0 {
            reader.string()?
        } else {
            self.entry(index, at)?.0.to_vec()
        };
        Ok((name, reader.string()?))
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
/// The name is found by a `match` (by length, then bytes) instead of a scan
/// of the 61 entries: this runs for every field of every response.
fn static_lookup(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let (first, count) = match name {
        b":authority" => (1, 1),
        b":method" => (2, 2),
        b":path" => (4, 2),
        b":scheme" => (6, 2),
        b":status" => (8, 7),
        b"accept-charset" => (15, 1),
        b"accept-encoding" => (16, 1),
        b"accept-language" => (17, 1),
        b"accept-ranges" => (18, 1),
        b"accept" => (19, 1),
        b"access-control-allow-origin" => (20, 1),
        b"age" => (21, 1),
        b"allow" => (22, 1),
        b"authorization" => (23, 1),
        b"cache-control" => (24, 1),
        b"content-disposition" => (25, 1),
        b"content-encoding" => (26, 1),
        b"content-language" => (27, 1),
        b"content-length" => (28, 1),
        b"content-location" => (29, 1),
        b"content-range" => (30, 1),
        b"content-type" => (31, 1),
        b"cookie" => (32, 1),
        b"date" => (33, 1),
        b"etag" => (34, 1),
        b"expect" => (35, 1),
        b"expires" => (36, 1),
        b"from" => (37, 1),
        b"host" => (38, 1),
        b"if-match" => (39, 1),
        b"if-modified-since" => (40, 1),
        b"if-none-match" => (41, 1),
        b"if-range" => (42, 1),
        b"if-unmodified-since" => (43, 1),
        b"last-modified" => (44, 1),
        b"link" => (45, 1),
        b"location" => (46, 1),
        b"max-forwards" => (47, 1),
        b"proxy-authenticate" => (48, 1),
        b"proxy-authorization" => (49, 1),
        b"range" => (50, 1),
        b"referer" => (51, 1),
        b"refresh" => (52, 1),
        b"retry-after" => (53, 1),
        b"server" => (54, 1),
        b"set-cookie" => (55, 1),
        b"strict-transport-security" => (56, 1),
        b"transfer-encoding" => (57, 1),
        b"user-agent" => (58, 1),
        b"vary" => (59, 1),
        b"via" => (60, 1),
        b"www-authenticate" => (61, 1),
        _ => return (None, None),
    };
    let full = (first..first + count).find(|&i| STATIC_TABLE[i - 1].1 == value);
    (Some(first), full)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_lookup_agrees_with_a_scan_of_the_table() {
        fn scan(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
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
        let mut cases: Vec<(&[u8], &[u8])> = STATIC_TABLE.to_vec();
        for (name, _) in STATIC_TABLE.iter() {
            cases.push((name, b"other"));
            cases.push((&name[1..], b""));
        }
        cases.extend([(&b"x-custom"[..], &b""[..]), (b"", b""), (b"Server", b"")]);
        for (name, value) in cases {
            assert_eq!(
                static_lookup(name, value),
                scan(name, value),
                "{name:?} {value:?}"
            );
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<Field> {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn decode(decoder: &mut Decoder, block: &[u8]) -> Result<Vec<Field>, DecodeError> {
        decoder.decode(block, 65_536)
    }

    /// The table's names, newest first, and its size.
    fn table(decoder: &Decoder) -> (Vec<&[u8]>, usize) {
        let names = decoder.table.entries.iter().map(|f| &f.0[..]).collect();
        (names, decoder.table.size)
    }

    #[test]
    fn rfc_7541_c2_field_representations() {
        let mut decoder = Decoder::default();
        let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(
            decode(&mut decoder, &block),
            Ok(fields(&[("custom-key", "custom-header")]))
        );
        assert_eq!(table(&decoder), (vec![&b"custom-key"[..]], 55));
        for (block, field) in [
            (
                "040c 2f73 616d 706c 652f 7061 7468",
                (":path", "/sample/path"),
            ),
            (
                "1008 7061 7373 776f 7264 0673 6563 7265 74",
                ("password", "secret"),
            ),
            ("82", (":method", "GET")),
        ] {
            let mut decoder = Decoder::default();
            assert_eq!(decode(&mut decoder, &hex(block)), Ok(fields(&[field])));
            assert_eq!(table(&decoder), (vec![], 0));
        }
    }

    const REQUESTS: [&[(&str, &str)]; 3] = [
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ],
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ],
    ];

    fn requests(blocks: [&str; 3]) {
        let mut decoder = Decoder::default();
        let tables: [(&[&[u8]], usize); 3] = [
            (&[b":authority"], 57),
            (&[b"cache-control", b":authority"], 110),
            (&[b"custom-key", b"cache-control", b":authority"], 164),
        ];
        for ((block, expected), (names, size)) in blocks.iter().zip(REQUESTS).zip(tables) {
            assert_eq!(decode(&mut decoder, &hex(block)), Ok(fields(expected)));
            assert_eq!(table(&decoder), (names.to_vec(), size));
        }
    }

    #[test]
    fn rfc_7541_c3_requests() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn rfc_7541_c4_requests_with_huffman() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    const DATE_1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
    const DATE_2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
    const LOCATION: &str = "https://www.example.com";
    const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

    /// C.5 and C.6 assume a 256-byte table: the client says so first, with a
    /// size update (3fe101) before the first block's fields.
    fn responses(blocks: [&str; 3]) {
        let expected: [&[(&str, &str)]; 3] = [
            &[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", DATE_1),
                ("location", LOCATION),
            ],
            &[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", DATE_1),
                ("location", LOCATION),
            ],
            &[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", DATE_2),
                ("location", LOCATION),
                ("content-encoding", "gzip"),
                ("set-cookie", COOKIE),
            ],
        ];
        let tables: [(&[&[u8]], usize); 3] = [
            (&[b"location", b"date", b"cache-control", b":status"], 222),
            (&[b":status", b"location", b"date", b"cache-control"], 222),
            (&[b"set-cookie", b"content-encoding", b"date"], 215),
        ];
        let mut decoder = Decoder::default();
        let first = format!("3fe101 {}", blocks[0]);
        let blocks = [first.as_str(), blocks[1], blocks[2]];
        for ((block, expected), (names, size)) in blocks.iter().zip(expected).zip(tables) {
            assert_eq!(decode(&mut decoder, &hex(block)), Ok(fields(expected)));
            assert_eq!(table(&decoder), (names.to_vec(), size));
        }
    }

    #[test]
    fn rfc_7541_c5_responses() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn rfc_7541_c6_responses_with_huffman() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn what_the_reference_refuses_is_refused() {
        for (block, at, why) in [
            ("80", 0, "index 0"),
            ("be", 0, "index past the tables"),
            ("82 20", 1, "table size update after a field"),
            ("3f e2 1f", 0, "table size update above our limit"), // 4097
            ("3f 80 80 80 80 80 00", 6, "integer too long"),
            ("41", 1, "the block ends inside a field"),
            ("ff", 1, "the block ends inside a field"),
            ("41 05 61", 2, "a string runs past the block"),
            ("41 7f ff ff ff ff 0f", 7, "a string runs past the block"),
            ("41 81 ff", 2, "invalid Huffman string"), // 8 bits of padding
            ("41 84 ff ff ff fc", 2, "invalid Huffman string"), // EOS
            ("00 00", 2, "the block ends inside a field"),
        ] {
            let result = decode(&mut Decoder::default(), &hex(block));
            assert_eq!(result, Err(DecodeError::Invalid { at, why }), "{block}");
        }
    }

    #[test]
    fn what_the_reference_takes_is_taken() {
        let mut decoder = Decoder::default();
        // size updates only (4096, then 33 in 6 bytes as hpack takes it)
        assert_eq!(
            decode(&mut decoder, &hex("3f e1 1f 3f 82 80 80 80 00")),
            Ok(vec![])
        );
        assert_eq!(decoder.table.max_size, 33);
        // an entry larger than the table empties it
        decode(&mut decoder, &hex("40 01 61 00")).unwrap();
        assert_eq!(table(&decoder), (vec![&b"a"[..]], 33));
        decode(&mut decoder, &hex("40 01 62 01 62")).unwrap();
        assert_eq!(table(&decoder), (vec![], 0));
        // never-indexed with a literal name, and an empty Huffman string
        assert_eq!(
            decode(&mut decoder, &hex("10 01 78 80")),
            Ok(fields(&[("x", "")]))
        );
        // a size update evicts the oldest entries
        let mut decoder = Decoder::default();
        decode(&mut decoder, &hex("40 01 61 00 40 01 62 00")).unwrap();
        assert_eq!(
            decode(&mut decoder, &hex("3f 03 be")),
            Ok(fields(&[("b", "")]))
        );
        assert_eq!(table(&decoder), (vec![&b"b"[..]], 33));
    }

    #[test]
    fn the_list_limit_counts_names_values_and_32() {
        let block = hex("82 84"); // :method GET (42), :path / (38)
        assert_eq!(
            Decoder::default().decode(&block, 80).map(|f| f.len()),
            Ok(2)
        );
        assert_eq!(
            Decoder::default().decode(&block, 79),
            Err(DecodeError::TooLarge)
        );
    }
}
