//! JA4 TLS client fingerprints (`conn.tls.ja4_fingerprint`), computed from
//! the bytes of a ClientHello as the client sent them: one or more TLS
//! records (type 22) carrying the handshake message, read before the
//! handshake. The algorithm is FoxIO's JA4 specification
//! (`technical_details/JA4.md` of github.com/FoxIO-LLC/ja4):
//!
//! `t` + version + `d`/`i` (SNI or not) + cipher count + extension count +
//! ALPN first/last character, `_`, the first 12 hex digits of the SHA-256 of
//! the sorted cipher list, `_`, the same of the sorted extension list (SNI
//! and ALPN left out) followed by `_` and the signature algorithms in their
//! order. GREASE values are ignored everywhere.
//!
//! Anything that is not a complete, well-formed ClientHello gives None; the
//! parser never reads past the input.

use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SNI: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// The most bytes of handshake message the reassembly keeps (a TLS record
/// holds at most 2^14; a ClientHello in several records is rare).
pub const MAX_HELLO: usize = 64 * 1024;

/// GREASE (RFC 8701): `0x?a?a` with both bytes equal.
fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// A cursor over a byte slice; every read checks the length.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }

    /// A vector with a length prefix of `width` bytes (1 or 2).
    fn vector(&mut self, width: usize) -> Option<Reader<'a>> {
        let len = match width {
            1 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        self.take(len).map(|data| Reader { data })
    }

    fn u16s(mut self) -> Option<Vec<u16>> {
        if !self.data.len().is_multiple_of(2) {
            return None;
        }
        let mut out = Vec::with_capacity(self.data.len() / 2);
        while !self.data.is_empty() {
            out.push(self.u16()?);
        }
        Some(out)
    }
}

/// The handshake message carried by the records at the start of `records`:
/// the fragments of consecutive handshake records, concatenated until the
/// message's own length is reached.
fn handshake_message(records: &[u8]) -> Option<Vec<u8>> {
    let mut input = Reader { data: records };
    let mut message = Vec::new();
    loop {
        let kind = input.u8()?;
        let _version = input.u16()?;
        let fragment = input.vector(2)?;
        if kind != HANDSHAKE {
            return None;
        }
        message.extend_from_slice(fragment.data);
        if message.len() >= 4 {
            let len = (usize::from(message[1]) << 16)
                | (usize::from(message[2]) << 8)
                | usize::from(message[3]);
            if len + 4 > MAX_HELLO {
                return None;
            }
            if message.len() >= len + 4 {
                message.truncate(len + 4);
                return Some(message);
            }
        }
    }
}

/// What JA4 reads of a ClientHello.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` of the hello.
    pub version: u16,
    /// Cipher suites in order, GREASE removed.
    pub ciphers: Vec<u16>,
    /// Extension types in order, GREASE removed.
    pub extensions: Vec<u16>,
    /// The first ALPN protocol name, if any.
    pub alpn: Option<Vec<u8>>,
    /// The supported_versions list, GREASE removed.
    pub supported_versions: Vec<u16>,
    /// The signature_algorithms list in order, GREASE removed.
    pub signature_algorithms: Vec<u16>,
}

/// Parses the ClientHello at the start of `records` (TLS records as read
/// from the socket). None if they do not hold a complete one.
pub fn parse_client_hello(records: &[u8]) -> Option<ClientHello> {
    let message = handshake_message(records)?;
    let mut msg = Reader { data: &message };
    if msg.u8()? != CLIENT_HELLO {
        return None;
    }
    let len = msg.u24()?;
    let mut body = Reader {
        data: msg.take(len)?,
    };
    let mut hello = ClientHello {
        version: body.u16()?,
        ..ClientHello::default()
    };
    body.take(32)?; // random
    body.vector(1)?; // legacy_session_id
    hello.ciphers = body.vector(2)?.u16s()?;
    hello.ciphers.retain(|&c| !is_grease(c));
    body.vector(1)?; // legacy_compression_methods
    if body.data.is_empty() {
        return Some(hello); // no extensions at all (old clients)
    }
    let mut extensions = body.vector(2)?;
    while !extensions.data.is_empty() {
        let kind = extensions.u16()?;
        let mut data = extensions.vector(2)?;
        if is_grease(kind) {
            continue;
        }
        hello.extensions.push(kind);
        match kind {
            EXT_ALPN if hello.alpn.is_none() => {
                let mut list = data.vector(2)?;
                if !list.data.is_empty() {
                    hello.alpn = Some(list.vector(1)?.data.to_vec());
                }
            }
            EXT_SUPPORTED_VERSIONS => {
                let mut versions = data.vector(1)?.u16s()?;
                versions.retain(|&v| !is_grease(v));
                hello.supported_versions = versions;
            }
            EXT_SIGNATURE_ALGORITHMS => {
                let mut algorithms = data.vector(2)?.u16s()?;
                algorithms.retain(|&a| !is_grease(a));
                hello.signature_algorithms = algorithms;
            }
            _ => {}
        }
    }
    Some(hello)
}

fn version_text(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The ALPN part: first and last character of the first ALPN value when
/// both are ASCII alphanumerics, else the first and last hex digit of the
/// value's hex form; "00" when there is none (JA4.md, ALPN Extension Value).
fn alpn_text(alpn: Option<&[u8]>) -> String {
    let Some(value) = alpn.filter(|v| !v.is_empty()) else {
        return "00".to_owned();
    };
    let (first, last) = (value[0], value[value.len() - 1]);
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        return format!("{}{}", char::from(first), char::from(last));
    }
    let hex = hex_of(value);
    let digits = hex.as_bytes();
    format!(
        "{}{}",
        char::from(digits[0]),
        char::from(digits[digits.len() - 1])
    )
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_list(values: &[u16]) -> String {
    values
        .iter()
        .map(|v| format!("{v:04x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The first 12 hex digits of SHA-256 of `text`; `000000000000` for none.
fn hash12(text: &str, empty: bool) -> String {
    if empty {
        return "000000000000".to_owned();
    }
    let digest = Sha256::digest(text.as_bytes());
    hex_of(&digest[..6])
}

impl ClientHello {
    /// The JA4 fingerprint (TLS over TCP: the first character is `t`).
    pub fn ja4(&self) -> String {
        let version = self
            .supported_versions
            .iter()
            .max()
            .copied()
            .unwrap_or(self.version);
        let sni = if self.extensions.contains(&EXT_SNI) {
            'd'
        } else {
            'i'
        };
        let mut ciphers = self.ciphers.clone();
        ciphers.sort_unstable();
        let mut extensions: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
            .collect();
        extensions.sort_unstable();
        let mut extension_text = hex_list(&extensions);
        if !self.signature_algorithms.is_empty() {
            extension_text.push('_');
            extension_text.push_str(&hex_list(&self.signature_algorithms));
        }
        format!(
            "t{}{}{:02}{:02}{}_{}_{}",
            version_text(version),
            sni,
            self.ciphers.len().min(99),
            self.extensions.len().min(99),
            alpn_text(self.alpn.as_deref()),
            hash12(&hex_list(&ciphers), ciphers.is_empty()),
            hash12(&extension_text, extensions.is_empty()),
        )
    }
}

/// The JA4 fingerprint of the ClientHello at the start of `records`, or
/// None when they do not hold a complete, well-formed one.
pub fn ja4(records: &[u8]) -> Option<String> {
    parse_client_hello(records).map(|hello| hello.ja4())
}
