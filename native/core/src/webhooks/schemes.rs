//! The signature schemes. Each check first validates its configuration
//! (secret, options, URL: an [`Error`]), then reads the request in a fixed
//! order: required headers, their form, the timestamp, the signature.

use p256::ecdsa::signature::MultipartVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::encoding::{b64decode, encode, equal, hex, hmac, matches, sha256, Alg, Enc};
use super::form::{hubspot_uri, is_form, parse_form, port_variants, query_param};
use super::headers::{malformed, Headers};
use super::{Error, Request, Verdict};

/// Where and how an HMAC signature is presented.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodySig<'a> {
    pub header: &'a str,
    pub alg: Alg,
    pub enc: Enc,
    /// Text before the encoded MAC, e.g. `sha256=`.
    pub prefix: &'a str,
    /// The header is a comma-separated list of `prefix<mac>` entries.
    pub list: bool,
}

#[derive(Debug)]
pub(crate) enum Scheme {
    /// HMAC of the raw body.
    Body(BodySig<'static>),
    /// HMAC of `{lead}{timestamp}{sep}{body}`, the timestamp in `ts_header`.
    Timestamped {
        sig: BodySig<'static>,
        ts_header: &'static str,
        lead: &'static str,
        sep: &'static str,
    },
    /// `ts_key=<t>,sig_key=<hex>[,sig_key=…]`; HMAC-SHA256 of `{t}.{body}`.
    KeyValue {
        header: &'static str,
        ts_key: &'static str,
        sig_key: &'static str,
    },
    /// Standard Webhooks (Svix): `{id}.{timestamp}.{body}`, base64 key.
    StandardWebhooks,
    /// A shared secret sent as is in a header (no MAC).
    Token {
        header: &'static str,
    },
    Twilio,
    Square,
    HubSpot,
    Mailgun,
    SendGrid,
    MicrosoftTeams,
    /// HMAC of the raw body, configured by `options`.
    Generic,
}

pub(crate) enum Fail {
    Config(Error),
    Request(Verdict),
}

impl From<Verdict> for Fail {
    fn from(verdict: Verdict) -> Self {
        Fail::Request(verdict)
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Config(error)
    }
}

type Outcome = Result<(), Fail>;

pub(crate) fn check(
    provider: &str,
    scheme: &Scheme,
    secret: &[u8],
    options: &[(String, String)],
    req: &Request<'_>,
) -> Result<Result<(), Verdict>, Error> {
    let outcome = match scheme {
        Scheme::Generic => generic(secret, options, req),
        Scheme::Token { header } if provider == "okta" => {
            let header = okta_header(options)?;
            token(&header, secret, req)
        }
        _ if !options.is_empty() => {
            Err(Error::InvalidOption(format!("provider {provider:?} takes no options")).into())
        }
        Scheme::Body(sig) => body(sig, secret, req),
        Scheme::Timestamped {
            sig,
            ts_header,
            lead,
            sep,
        } => timestamped(sig, ts_header, lead, sep, secret, req),
        Scheme::KeyValue {
            header,
            ts_key,
            sig_key,
        } => key_value(header, ts_key, sig_key, secret, req),
        Scheme::StandardWebhooks => standard_webhooks(secret, req),
        Scheme::Token { header } => token(header, secret, req),
        Scheme::Twilio => twilio(secret, req),
        Scheme::Square => square(secret, req),
        Scheme::HubSpot => hubspot(secret, req),
        Scheme::Mailgun => mailgun(secret, req),
        Scheme::SendGrid => sendgrid(secret, req),
        Scheme::MicrosoftTeams => microsoft_teams(secret, req),
    };
    match outcome {
        Ok(()) => Ok(Ok(())),
        Err(Fail::Request(verdict)) => Ok(Err(verdict)),
        Err(Fail::Config(error)) => Err(error),
    }
}

fn mismatch() -> Fail {
    Verdict::fail("signature mismatch").into()
}

/// Accept when any presented signature equals the expected one.
fn any_matches<'a>(
    enc: Enc,
    expected: &str,
    presented: impl IntoIterator<Item = &'a str>,
) -> Outcome {
    // Compare against every entry: which one matched is not secret, but
    // stopping early gains nothing worth a branch on the MAC.
    let mut found = false;
    for candidate in presented {
        found |= matches(enc, expected, candidate);
    }
    if found {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// The encoded signatures of a `BodySig` header value.
fn presented<'v>(sig: &BodySig<'_>, value: &'v str) -> Result<Vec<&'v str>, Verdict> {
    let found: Vec<&str> = if sig.list {
        value
            .split(',')
            .filter_map(|item| trim(item).strip_prefix(sig.prefix))
            .collect()
    } else {
        value.strip_prefix(sig.prefix).into_iter().collect()
    };
    if found.is_empty() {
        return Err(malformed(sig.header));
    }
    Ok(found)
}

fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// A signed timestamp must be 1–18 ASCII digits (seconds, or milliseconds
/// when `millis`) within `tolerance_s` of `now`, in either direction.
fn fresh(text: &str, millis: bool, req: &Request<'_>) -> Result<(), Verdict> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Verdict::fail("malformed timestamp"));
    }
    let value: i64 = text
        .parse()
        .map_err(|_| Verdict::fail("malformed timestamp"))?;
    let mut seconds = value as f64;
    if millis {
        seconds /= 1000.0;
    }
    let age = req.now - seconds;
    if age.abs() <= req.tolerance_s {
        Ok(())
    } else if age < 0.0 {
        Err(Verdict::fail("timestamp in the future"))
    } else {
        Err(Verdict::fail("stale timestamp"))
    }
}

fn body(sig: &BodySig<'_>, secret: &[u8], req: &Request<'_>) -> Outcome {
    let value = Headers::new(req.headers).required(sig.header)?;
    let candidates = presented(sig, value)?;
    let expected = encode(sig.enc, &hmac(sig.alg, secret, &[req.body]));
    any_matches(sig.enc, &expected, candidates)
}

fn timestamped(
    sig: &BodySig<'_>,
    ts_header: &str,
    lead: &str,
    sep: &str,
    secret: &[u8],
    req: &Request<'_>,
) -> Outcome {
    let headers = Headers::new(req.headers);
    let value = headers.required(sig.header)?;
    let ts = headers.required(ts_header)?;
    let candidates = presented(sig, value)?;
    fresh(ts, false, req)?;
    let parts: [&[u8]; 4] = [lead.as_bytes(), ts.as_bytes(), sep.as_bytes(), req.body];
    let expected = encode(sig.enc, &hmac(sig.alg, secret, &parts));
    any_matches(sig.enc, &expected, candidates)
}

fn key_value(
    header: &str,
    ts_key: &str,
    sig_key: &str,
    secret: &[u8],
    req: &Request<'_>,
) -> Outcome {
    let value = Headers::new(req.headers).required(header)?;
    let items: Vec<(&str, &str)> = value
        .split(',')
        .filter_map(|item| trim(item).split_once('='))
        .collect();
    let ts = items
        .iter()
        .find(|(key, _)| *key == ts_key)
        .map(|(_, v)| *v);
    let sigs: Vec<&str> = items
        .iter()
        .filter(|(key, _)| *key == sig_key)
        .map(|(_, v)| *v)
        .collect();
    let Some(ts) = ts.filter(|_| !sigs.is_empty()) else {
        return Err(malformed(header).into());
    };
    fresh(ts, false, req)?;
    let expected = hex(&hmac(Alg::Sha256, secret, &[ts.as_bytes(), b".", req.body]));
    any_matches(Enc::Hex, &expected, sigs)
}

fn text_secret(secret: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(secret).map_err(|_| Error::InvalidSecret("the secret must be text".into()))
}

fn standard_webhooks(secret: &[u8], req: &Request<'_>) -> Outcome {
    let text = text_secret(secret)?;
    let key = b64decode(text.strip_prefix("whsec_").unwrap_or(text)).ok_or_else(|| {
        Error::InvalidSecret(
            "a Standard Webhooks secret is base64, optionally after 'whsec_'".into(),
        )
    })?;
    let headers = Headers::new(req.headers);
    let prefix = if headers.optional("svix-signature")?.is_some() {
        "svix-"
    } else {
        "webhook-"
    };
    let id = headers.required(&format!("{prefix}id"))?;
    let ts = headers.required(&format!("{prefix}timestamp"))?;
    let sig_header = format!("{prefix}signature");
    let value = headers.required(&sig_header)?;
    let sigs: Vec<&str> = value
        .split(' ')
        .filter_map(|item| item.strip_prefix("v1,"))
        .collect();
    if sigs.is_empty() {
        return Err(malformed(&sig_header).into());
    }
    fresh(ts, false, req)?;
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", req.body];
    let expected = encode(Enc::Base64, &hmac(Alg::Sha256, &key, &parts));
    any_matches(Enc::Base64, &expected, sigs)
}

fn token(header: &str, secret: &[u8], req: &Request<'_>) -> Outcome {
    let value = Headers::new(req.headers).required(header)?;
    if equal(value.as_bytes(), secret) {
        Ok(())
    } else {
        Err(Verdict::fail("token mismatch").into())
    }
}

fn okta_header(options: &[(String, String)]) -> Result<String, Error> {
    let mut header = "authorization".to_owned();
    for (key, value) in options {
        match key.as_str() {
            "header" if !value.is_empty() => header = value.to_ascii_lowercase(),
            _ => return Err(bad_option("okta", key, value)),
        }
    }
    Ok(header)
}

fn bad_option(provider: &str, key: &str, value: &str) -> Error {
    Error::InvalidOption(format!(
        "provider {provider:?}: invalid option {key}={value:?}"
    ))
}

fn url<'a>(provider: &'static str, req: &Request<'a>) -> Result<&'a str, Error> {
    req.url.ok_or(Error::UrlRequired(provider))
}

fn twilio(secret: &[u8], req: &Request<'_>) -> Outcome {
    let url = url("twilio", req)?;
    let headers = Headers::new(req.headers);
    let value = headers.required("x-twilio-signature")?;
    let body_hash = query_param(url, "bodySHA256");
    // A JSON body is bound by its hash in the URL; a form body by its parameters.
    let mut params = if body_hash.is_none() && is_form(headers.optional("content-type")?) {
        parse_form(req.body)
    } else {
        Vec::new()
    };
    params.sort_unstable();
    params.dedup();
    let mut parts: Vec<&[u8]> = vec![b""];
    for (name, value) in &params {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    let (with_port, without_port) = port_variants(url);
    let mut found = false;
    for variant in [&with_port, &without_port] {
        parts[0] = variant.as_bytes();
        found |= matches(
            Enc::Base64,
            &encode(Enc::Base64, &hmac(Alg::Sha1, secret, &parts)),
            value,
        );
    }
    if !found {
        return Err(mismatch());
    }
    match body_hash {
        Some(hash) if !matches(Enc::Hex, &hex(&sha256(req.body)), &hash) => {
            Err(Verdict::fail("body hash mismatch").into())
        }
        _ => Ok(()),
    }
}

fn square(secret: &[u8], req: &Request<'_>) -> Outcome {
    let url = url("square", req)?;
    let value = Headers::new(req.headers).required("x-square-hmacsha256-signature")?;
    let expected = encode(
        Enc::Base64,
        &hmac(Alg::Sha256, secret, &[url.as_bytes(), req.body]),
    );
    any_matches(Enc::Base64, &expected, [value])
}

fn hubspot(secret: &[u8], req: &Request<'_>) -> Outcome {
    let url = url("hubspot", req)?;
    let headers = Headers::new(req.headers);
    let value = headers.required("x-hubspot-signature-v3")?;
    let ts = headers.required("x-hubspot-request-timestamp")?;
    fresh(ts, true, req)?;
    let uri = hubspot_uri(url);
    let parts: [&[u8]; 4] = [
        req.method.as_bytes(),
        uri.as_bytes(),
        req.body,
        ts.as_bytes(),
    ];
    let expected = encode(Enc::Base64, &hmac(Alg::Sha256, secret, &parts));
    any_matches(Enc::Base64, &expected, [value])
}

/// Mailgun signs `timestamp + token` and posts both with the signature in the
/// body: a JSON `signature` object, or form fields.
fn mailgun(secret: &[u8], req: &Request<'_>) -> Outcome {
    let headers = Headers::new(req.headers);
    let fields = if is_form(headers.optional("content-type")?) {
        mailgun_form(req.body)
    } else {
        mailgun_json(req.body)
    };
    let [ts, token, signature] = fields.ok_or_else(|| Verdict::fail("malformed body"))?;
    fresh(&ts, false, req)?;
    let expected = hex(&hmac(
        Alg::Sha256,
        secret,
        &[ts.as_bytes(), token.as_bytes()],
    ));
    any_matches(Enc::Hex, &expected, [signature.as_str()])
}

const MAILGUN_FIELDS: [&str; 3] = ["timestamp", "token", "signature"];

fn mailgun_form(body: &[u8]) -> Option<[String; 3]> {
    let params = parse_form(body);
    let one = |name: &str| {
        let mut values = params.iter().filter(|(key, _)| key == name);
        match (values.next(), values.next()) {
            (Some((_, value)), None) => Some(value.clone()),
            _ => None,
        }
    };
    Some([
        one(MAILGUN_FIELDS[0])?,
        one(MAILGUN_FIELDS[1])?,
        one(MAILGUN_FIELDS[2])?,
    ])
}

fn mailgun_json(body: &[u8]) -> Option<[String; 3]> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let signature = value.as_object()?.get("signature")?.as_object()?;
    let field = |name: &str| match signature.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) if name == "timestamp" => n.as_u64().map(|n| n.to_string()),
        _ => None,
    };
    Some([
        field(MAILGUN_FIELDS[0])?,
        field(MAILGUN_FIELDS[1])?,
        field(MAILGUN_FIELDS[2])?,
    ])
}

/// SendGrid signs `timestamp + body` with ECDSA P-256/SHA-256; the "secret"
/// is the verification public key, base64 DER (SubjectPublicKeyInfo).
fn sendgrid(secret: &[u8], req: &Request<'_>) -> Outcome {
    let key = b64decode(trim(text_secret(secret)?))
        .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
        .ok_or_else(|| {
            Error::InvalidSecret("the SendGrid secret is the base64 DER P-256 public key".into())
        })?;
    let headers = Headers::new(req.headers);
    const SIG: &str = "x-twilio-email-event-webhook-signature";
    let value = headers.required(SIG)?;
    let ts = headers.required("x-twilio-email-event-webhook-timestamp")?;
    let signature = b64decode(value)
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or_else(|| malformed(SIG))?;
    fresh(ts, false, req)?;
    key.multipart_verify(&[ts.as_bytes(), req.body], &signature)
        .map_err(|_| mismatch())
}

/// Microsoft Teams outgoing webhooks: `Authorization: HMAC <base64>`, keyed
/// by the base64-decoded security token.
fn microsoft_teams(secret: &[u8], req: &Request<'_>) -> Outcome {
    let key = b64decode(text_secret(secret)?)
        .ok_or_else(|| Error::InvalidSecret("the Teams security token is base64".into()))?;
    let value = Headers::new(req.headers).required("authorization")?;
    let sig = value
        .strip_prefix("HMAC ")
        .ok_or_else(|| malformed("authorization"))?;
    let expected = encode(Enc::Base64, &hmac(Alg::Sha256, &key, &[req.body]));
    any_matches(Enc::Base64, &expected, [sig])
}

/// `generic`: HMAC of the raw body; options `header` (required),
/// `algorithm` (sha1, sha256, sha512; default sha256), `encoding` (hex,
/// base64; default hex), `prefix` (default none).
fn generic(secret: &[u8], options: &[(String, String)], req: &Request<'_>) -> Outcome {
    let mut header = None;
    let mut sig = BodySig {
        header: "",
        alg: Alg::Sha256,
        enc: Enc::Hex,
        prefix: "",
        list: false,
    };
    for (key, value) in options {
        match (key.as_str(), value.as_str()) {
            ("header", name) if !name.is_empty() => header = Some(name.to_ascii_lowercase()),
            ("algorithm", "sha1") => sig.alg = Alg::Sha1,
            ("algorithm", "sha256") => sig.alg = Alg::Sha256,
            ("algorithm", "sha512") => sig.alg = Alg::Sha512,
            ("encoding", "hex") => sig.enc = Enc::Hex,
            ("encoding", "base64") => sig.enc = Enc::Base64,
            ("prefix", prefix) => sig.prefix = prefix,
            _ => return Err(bad_option("generic", key, value).into()),
        }
    }
    let header = header.ok_or_else(|| {
        Error::InvalidOption("provider \"generic\" needs the option header".into())
    })?;
    body(
        &BodySig {
            header: &header,
            ..sig
        },
        secret,
        req,
    )
}
