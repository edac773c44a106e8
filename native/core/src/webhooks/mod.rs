//! Webhook signature verification for the `verify-webhook` action.
//!
//! [`verify`] checks one received request against one provider's published
//! scheme. Each provider is a row of [`providers::TABLE`]: most are a
//! parameterised [`Scheme`] (HMAC of the raw body, of a timestamp and the
//! body, a `t=…,v1=…` header…), a few have a function of their own (Twilio,
//! HubSpot, Mailgun, SendGrid…).
//!
//! Rules shared by every scheme (the pure-Python twin follows the same ones):
//! - header names are ASCII case-insensitive; a header the scheme reads that
//!   appears more than once fails the check (`duplicate header …`);
//!   leading/trailing spaces and tabs of values are ignored;
//! - the expected MAC is encoded (lower-case hex or padded standard base64)
//!   and compared in constant time with the presented text (hex is compared
//!   case-insensitively); any entry of a signature list may match;
//! - a signed timestamp is 1–18 ASCII digits and must lie within
//!   `tolerance_s` of `now`, in both directions.
//!
//! Bad configuration (unknown provider, bad option, unusable secret, missing
//! URL for a provider that signs it) is an [`Error`]; everything wrong with
//! the request itself is a failed [`Verdict`] with a short reason.

mod encoding;
mod form;
mod headers;
mod providers;
mod schemes;

use std::borrow::Cow;
use std::fmt;

pub use providers::{default_tolerance_s, names as provider_names, DEFAULT_TOLERANCE_S};

/// One received request, as the verifier sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Header (name, value) pairs as received; names in any case.
    pub headers: &'a [(String, String)],
    /// The raw body bytes, before any transformation.
    pub body: &'a [u8],
    /// The full public URL the provider posted to (Twilio, Square, HubSpot).
    pub url: Option<&'a str>,
    /// The request method (HubSpot signs it).
    pub method: &'a str,
    /// Current unix time in seconds.
    pub now: f64,
    /// Largest accepted distance between `now` and a signed timestamp.
    pub tolerance_s: f64,
}

/// The outcome of a verification: `reason` is `"ok"` or says what failed,
/// never containing the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub verified: bool,
    pub reason: Cow<'static, str>,
}

impl Verdict {
    pub(crate) fn ok() -> Self {
        Verdict {
            verified: true,
            reason: Cow::Borrowed("ok"),
        }
    }

    pub(crate) fn fail(reason: impl Into<Cow<'static, str>>) -> Self {
        Verdict {
            verified: false,
            reason: reason.into(),
        }
    }
}

/// A configuration error: the call cannot be answered for any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    UnknownProvider(String),
    InvalidOption(String),
    InvalidSecret(String),
    UrlRequired(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownProvider(p) => write!(f, "unknown webhook provider {p:?}"),
            Error::InvalidOption(m) | Error::InvalidSecret(m) => f.write_str(m),
            Error::UrlRequired(p) => write!(f, "provider {p:?} signs the request URL: pass url="),
        }
    }
}

impl std::error::Error for Error {}

/// Verify `req` against `provider`'s scheme with `secret` (and `options`,
/// which only `generic` and `okta` take).
pub fn verify(
    provider: &str,
    secret: &[u8],
    options: &[(String, String)],
    req: &Request<'_>,
) -> Result<Verdict, Error> {
    let scheme =
        providers::lookup(provider).ok_or_else(|| Error::UnknownProvider(provider.to_owned()))?;
    if secret.is_empty() {
        return Err(Error::InvalidSecret(
            "the webhook secret must not be empty".into(),
        ));
    }
    let outcome = schemes::check(provider, scheme, secret, options, req)?;
    Ok(match outcome {
        Ok(()) => Verdict::ok(),
        Err(verdict) => verdict,
    })
}

#[cfg(test)]
mod tests;
