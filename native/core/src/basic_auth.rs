//! HTTP Basic credentials (RFC 7617) as `policy/actions/basic_auth.py`
//! reads and checks them, for the native phase runner.
//!
//! The parse mirrors the Python action's `_parse` byte for byte where it is
//! certain to; an encoding whose outcome depends on the finer points of
//! Python's `base64.b64decode(validate=True)` (padding in odd places, a
//! length that is not a multiple of four) is [`Parsed::Unsure`], and the
//! engine runs the step.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// What the `Authorization` header(s) of a request present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// No Basic credentials.
    Absent,
    /// Basic credentials that cannot be used (bad base64, no colon, the
    /// header twice).
    Malformed,
    /// `username:password`, split at the first colon.
    Credentials(Vec<u8>, Vec<u8>),
    /// An encoding only Python's decoder decides.
    Unsure,
}

/// Canonical padding, non-zero trailing bits ignored: what
/// `base64.b64decode(validate=True)` accepts of canonical input.
const CANONICAL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// `_parse(values)`: the values of every `Authorization` header, in order.
pub fn parse(values: &[&[u8]]) -> Parsed {
    let basic = values.iter().find(|v| {
        (v.len() >= 6 && v[..6].eq_ignore_ascii_case(b"basic ")) || v.eq_ignore_ascii_case(b"basic")
    });
    let Some(basic) = basic else {
        return Parsed::Absent;
    };
    if values.len() > 1 {
        return Parsed::Malformed; // which one would the upstream read?
    }
    let data = basic.get(6..).unwrap_or_default();
    let data = data.trim_ascii(); // bytes.strip(): the same six bytes
    let alphabet = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/');
    if !data.iter().all(|c| alphabet(c) || *c == b'=') {
        return Parsed::Malformed; // strict mode: "Only base64 data is allowed"
    }
    let padding = data.iter().rev().take_while(|c| **c == b'=').count();
    let canonical =
        data.len() % 4 == 0 && padding <= 2 && data[..data.len() - padding].iter().all(alphabet);
    if !canonical {
        return Parsed::Unsure;
    }
    let Ok(decoded) = CANONICAL.decode(data) else {
        return Parsed::Unsure;
    };
    match decoded.iter().position(|c| *c == b':') {
        None => Parsed::Malformed,
        Some(k) => Parsed::Credentials(decoded[..k].to_vec(), decoded[k + 1..].to_vec()),
    }
}

/// A credential as the action keeps it: SHA-256 of the username and of
/// the password.
pub type Entry = ([u8; 32], [u8; 32]);

/// Whether `username:password` is one of `entries`: every entry compared,
/// in constant time, without an early exit (`BasicAuth._check`).
pub fn check(username: &[u8], password: &[u8], entries: &[Entry]) -> bool {
    let user: [u8; 32] = Sha256::digest(username).into();
    let secret: [u8; 32] = Sha256::digest(password).into();
    let mut matched = Choice::from(0);
    for (entry_user, entry_secret) in entries {
        matched |= user.ct_eq(entry_user) & secret.ct_eq(entry_secret);
    }
    bool::from(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> Parsed {
        parse(&[v.as_bytes()])
    }

    fn entry(user: &str, password: &str) -> Entry {
        (
            Sha256::digest(user.as_bytes()).into(),
            Sha256::digest(password.as_bytes()).into(),
        )
    }

    #[test]
    fn reads_credentials_as_the_action_does() {
        let creds = |u: &str, p: &str| Parsed::Credentials(u.into(), p.into());
        // "alice:pa:ss" and "bob:" ; the scheme in any case; spaces stripped
        assert_eq!(header("Basic YWxpY2U6cGE6c3M="), creds("alice", "pa:ss"));
        assert_eq!(header("bAsIc  Ym9iOg== \t"), creds("bob", ""));
        assert_eq!(header("Basic YR=="), Parsed::Malformed); // "a": no colon
        assert_eq!(header("Basic"), Parsed::Malformed); // empty: no colon
        assert_eq!(header("Bearer x"), Parsed::Absent);
        assert_eq!(header("Basic\tYQ=="), Parsed::Absent);
        assert_eq!(parse(&[]), Parsed::Absent);
        assert_eq!(parse(&[b"Bearer x", b"Basic Ym9iOg=="]), Parsed::Malformed);
        assert_eq!(header("Basic Ym9i Og=="), Parsed::Malformed);
        assert_eq!(header("Basic Ym9i-g=="), Parsed::Malformed);
        // Python decides these itself
        assert_eq!(header("Basic Ym9iOg"), Parsed::Unsure);
        assert_eq!(header("Basic Ym9iOg==="), Parsed::Unsure);
        assert_eq!(header("Basic Ym9=iOg="), Parsed::Unsure);
    }

    #[test]
    fn checks_every_entry() {
        let entries = [entry("alice", "password1"), entry("bob", "password2")];
        assert!(check(b"bob", b"password2", &entries));
        assert!(!check(b"bob", b"password1", &entries));
        assert!(!check(b"carol", b"password2", &entries));
        assert!(!check(b"bob", b"password2", &[]));
    }
}
