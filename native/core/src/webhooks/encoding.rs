//! MACs, digest encodings and the constant-time comparison.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    Hex,
    Base64,
}

fn mac_of<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC of the concatenation of `parts`, fed incrementally (no copy of the body).
pub(crate) fn hmac(alg: Alg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Alg::Sha1 => mac_of::<Hmac<Sha1>>(key, parts),
        Alg::Sha256 => mac_of::<Hmac<Sha256>>(key, parts),
        Alg::Sha512 => mac_of::<Hmac<Sha512>>(key, parts),
    }
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

pub(crate) fn encode(enc: Enc, bytes: &[u8]) -> String {
    match enc {
        Enc::Hex => hex(bytes),
        Enc::Base64 => STANDARD.encode(bytes),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Canonical padded standard base64 only (what the Python twin checks by
/// re-encoding), so both backends accept exactly the same strings.
pub(crate) fn b64decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Constant-time equality of the expected encoded MAC with a presented one;
/// hex is case-insensitive. Only the lengths leak, and they are public.
pub(crate) fn matches(enc: Enc, expected: &str, presented: &str) -> bool {
    let presented: Cow<'_, str> = match enc {
        Enc::Hex => Cow::Owned(presented.to_ascii_lowercase()),
        Enc::Base64 => Cow::Borrowed(presented),
    };
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Constant-time equality of two byte strings (shared-token schemes).
pub(crate) fn equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
