//! The signature schemes. Each check first validates its configuration
//! (secret, options, URL: an [`Error`]), then reads the request in a fixed
//! order: required headers, their form, the timestamp, the signature.

use p256::ecdsa::signature::MultipartVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::encoding::{b64decode, encode, equal, hex, hmac, matches, sha256, Alg, Enc};
use super::form::{
    contentful_path, hubspot_uri, is_form, json_string, parse_form, port_variants, query_param,
    split_url,
};
use super::headers::{malformed, Headers};
use super::timestamp;
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
    /// Okta event hooks: a token in a configurable header (option `header`).
    Okta,
    /// HMAC-SHA256 (base64) of `{timestamp}{body}`, RFC 3339 timestamp.
    Zendesk,
    /// Box: HMAC-SHA256 (base64) of `{body}{timestamp}` in a primary and a
    /// secondary header (one per key); RFC 3339 timestamp.
    Box,
    Twilio,
    Square,
    HubSpot,
    Mailgun,
    SendGrid,
    MicrosoftTeams,
    /// HMAC of the raw body, configured by `options`.
    Generic,
    /// Contentful request verification: a canonical request (method, path,
    /// signed headers, body), millisecond timestamp.
    Contentful,
    /// DocuSign Connect: base64 HMAC-SHA256 of the body in
    /// `X-DocuSign-Signature-<n>`, one header per key.
    DocuSign,
    /// Hygraph (GraphCMS): base64 HMAC-SHA256 of a JSON document built from
    /// the body, the environment name and a millisecond timestamp.
    Hygraph,
    /// Mandrill (Mailchimp Transactional): base64 HMAC-SHA1 of the URL and
    /// the form parameters sorted by name.
    Mandrill,
    /// Orb: hex HMAC-SHA256 of `v1:{timestamp}:{body}`, ISO 8601 timestamp.
    Orb,
    /// Plivo V3: base64 HMAC-SHA256 of the URL, sorted parameters and nonce.
    Plivo,
    /// HTTP Basic credentials (`user::password` secret; VMware Workspace ONE).
    BasicAuth,
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
        Scheme::Okta => okta_header(options)
            .map_err(Fail::from)
            .and_then(|h| token(&h, secret, req)),
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
        Scheme::Zendesk => zendesk(secret, req),
        Scheme::Box => box_com(secret, req),
        Scheme::Contentful => contentful(secret, req),
        Scheme::DocuSign => docusign(secret, req),
        Scheme::Hygraph => hygraph(secret, req),
        Scheme::Mandrill => mandrill(secret, req),
        Scheme::Orb => orb(secret, req),
        Scheme::Plivo => plivo(secret, req),
        Scheme::BasicAuth => basic_auth(secret, req),
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

/// A unix timestamp (seconds, or milliseconds when `millis`) within tolerance.
fn fresh(text: &str, millis: bool, req: &Request<'_>) -> Result<(), Verdict> {
    timestamp::within_tolerance(timestamp::unix(text, millis)?, req)
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

fn zendesk(secret: &[u8], req: &Request<'_>) -> Outcome {
    let headers = Headers::new(req.headers);
    let value = headers.required("x-zendesk-webhook-signature")?;
    let ts = headers.required("x-zendesk-webhook-signature-timestamp")?;
    timestamp::within_tolerance(timestamp::rfc3339(ts)?, req)?;
    let expected = encode(
        Enc::Base64,
        &hmac(Alg::Sha256, secret, &[ts.as_bytes(), req.body]),
    );
    any_matches(Enc::Base64, &expected, [value])
}

/// Box signs with two keys (primary, secondary) for rotation; the secret
/// may be either, so a match in either header verifies. Box's SDKs also
/// require signature version `1` and algorithm `HmacSHA256`.
fn box_com(secret: &[u8], req: &Request<'_>) -> Outcome {
    let headers = Headers::new(req.headers);
    let primary = headers.optional("box-signature-primary")?;
    let secondary = headers.optional("box-signature-secondary")?;
    let ts = headers.required("box-delivery-timestamp")?;
    if primary.is_none() && secondary.is_none() {
        return Err(Verdict::fail("missing header box-signature-primary").into());
    }
    if headers.required("box-signature-version")? != "1" {
        return Err(malformed("box-signature-version").into());
    }
    if headers.required("box-signature-algorithm")? != "HmacSHA256" {
        return Err(malformed("box-signature-algorithm").into());
    }
    timestamp::within_tolerance(timestamp::rfc3339(ts)?, req)?;
    let expected = encode(
        Enc::Base64,
        &hmac(Alg::Sha256, secret, &[req.body, ts.as_bytes()]),
    );
    any_matches(Enc::Base64, &expected, primary.into_iter().chain(secondary))
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

/// Contentful (node-apps-toolkit `verifyRequest`): hex HMAC-SHA256 of
/// `method \n path \n k:v;k:v \n body`, where the headers are those named
/// in `x-contentful-signed-headers` (lower-case names, sorted), with the
/// timestamp and the signed-header list as the toolkit re-derives them.
fn contentful(secret: &[u8], req: &Request<'_>) -> Outcome {
    const SIG: &str = "x-contentful-signature";
    const TS: &str = "x-contentful-timestamp";
    const SIGNED: &str = "x-contentful-signed-headers";
    let url = url("contentful", req)?;
    let headers = Headers::new(req.headers);
    let value = headers.required(SIG)?;
    let ts = headers.required(TS)?;
    let signed = headers.required(SIGNED)?;
    let millis = timestamp::unix(ts, true)?;
    timestamp::within_tolerance(millis, req)?;
    let mut names: Vec<&str> = signed
        .split(',')
        .filter(|n| n.is_ascii() && *n == n.to_ascii_lowercase() && *n != TS && *n != SIGNED)
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut picked: Vec<(String, String)> = Vec::with_capacity(names.len() + 2);
    for name in names {
        if let Some(v) = headers.optional(name)? {
            picked.push((name.to_owned(), v.to_owned()));
        }
    }
    // The toolkit re-signs with these two set to what it derived.
    let ts_text = ts
        .parse::<i64>()
        .map_err(|_| Verdict::fail("malformed timestamp"))?;
    picked.push((TS.to_owned(), ts_text.to_string()));
    picked.push((SIGNED.to_owned(), String::new()));
    picked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let list = picked
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let joined = picked
        .iter()
        .map(|(n, v)| {
            let v = if n == SIGNED {
                list.as_str()
            } else {
                v.as_str()
            };
            format!("{n}:{v}")
        })
        .collect::<Vec<_>>()
        .join(";");
    let (_, path) = split_url(url);
    let path = contentful_path(path);
    let parts: [&[u8]; 7] = [
        req.method.as_bytes(),
        b"\n",
        path.as_bytes(),
        b"\n",
        joined.as_bytes(),
        b"\n",
        req.body,
    ];
    let expected = hex(&hmac(Alg::Sha256, secret, &parts));
    any_matches(Enc::Hex, &expected, [value])
}

/// DocuSign Connect signs with every active HMAC key, one header each
/// (`X-DocuSign-Signature-1`, `-2`, ...); the secret may be any of them.
fn docusign(secret: &[u8], req: &Request<'_>) -> Outcome {
    const PREFIX: &str = "x-docusign-signature-";
    let headers = Headers::new(req.headers);
    let mut names: Vec<String> = Vec::new();
    for (key, _) in req.headers {
        let lower = key.to_ascii_lowercase();
        let is_sig = key.is_ascii()
            && lower
                .strip_prefix(PREFIX)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_sig && !names.contains(&lower) {
            names.push(lower);
        }
    }
    if names.is_empty() {
        return Err(Verdict::fail("missing header x-docusign-signature-1").into());
    }
    let mut sigs = Vec::with_capacity(names.len());
    for name in &names {
        sigs.push(headers.required(name)?);
    }
    let expected = encode(Enc::Base64, &hmac(Alg::Sha256, secret, &[req.body]));
    any_matches(Enc::Base64, &expected, sigs)
}

/// Hygraph (`@hygraph/utils` `verifyWebhookSignature`): `gcms-signature:
/// sign=<b64>, env=<name>, t=<ms>`; the MAC covers
/// `JSON.stringify({Body, EnvironmentName, TimeStamp})`.
fn hygraph(secret: &[u8], req: &Request<'_>) -> Outcome {
    const SIG: &str = "gcms-signature";
    let value = Headers::new(req.headers).required(SIG)?;
    let parts: Vec<&str> = value.split(", ").collect();
    let [sign, env, t] = parts.as_slice() else {
        return Err(malformed(SIG).into());
    };
    let (Some(sign), Some(env), Some(t)) = (
        sign.strip_prefix("sign="),
        env.strip_prefix("env="),
        t.strip_prefix("t="),
    ) else {
        return Err(malformed(SIG).into());
    };
    fresh(t, true, req)?;
    let body = std::str::from_utf8(req.body).map_err(|_| Verdict::fail("malformed body"))?;
    let millis = t
        .parse::<i64>()
        .map_err(|_| Verdict::fail("malformed timestamp"))?;
    let document = format!(
        "{{\"Body\":{},\"EnvironmentName\":{},\"TimeStamp\":{millis}}}",
        json_string(body),
        json_string(env)
    );
    let expected = encode(
        Enc::Base64,
        &hmac(Alg::Sha256, secret, &[document.as_bytes()]),
    );
    any_matches(Enc::Base64, &expected, [sign])
}

/// Mandrill: the webhook URL as configured, then each form parameter's
/// name and value, sorted by name (stable), no separators.
fn mandrill(secret: &[u8], req: &Request<'_>) -> Outcome {
    let url = url("mailchimp", req)?;
    let headers = Headers::new(req.headers);
    let value = headers.required("x-mandrill-signature")?;
    let mut params = if is_form(headers.optional("content-type")?) {
        parse_form(req.body)
    } else {
        Vec::new()
    };
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts: Vec<&[u8]> = vec![url.as_bytes()];
    for (name, value) in &params {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    let expected = encode(Enc::Base64, &hmac(Alg::Sha1, secret, &parts));
    any_matches(Enc::Base64, &expected, [value])
}

/// Orb (its SDKs' `verify_signature`): space-separated `v1=<hex>` entries,
/// HMAC-SHA256 of `v1:{X-Orb-Timestamp}:{body}`, ISO 8601 timestamp (UTC
/// when it has no offset).
fn orb(secret: &[u8], req: &Request<'_>) -> Outcome {
    const SIG: &str = "x-orb-signature";
    let headers = Headers::new(req.headers);
    let value = headers.required(SIG)?;
    let ts = headers.required("x-orb-timestamp")?;
    let sigs: Vec<&str> = value
        .split(' ')
        .filter_map(|item| item.strip_prefix("v1="))
        .filter(|sig| !sig.contains('='))
        .collect();
    if sigs.is_empty() {
        return Err(malformed(SIG).into());
    }
    timestamp::within_tolerance(timestamp::iso8601(ts)?, req)?;
    let parts: [&[u8]; 4] = [b"v1:", ts.as_bytes(), b":", req.body];
    let expected = hex(&hmac(Alg::Sha256, secret, &parts));
    any_matches(Enc::Hex, &expected, sigs)
}

/// Plivo V3 (plivo SDKs' `validate_v3_signature`): the URL without its
/// query, then `?` and the query parameters sorted (`k=v&...`), then for a
/// POST with parameters `.` and each sorted `name value`, then `.nonce`.
fn plivo(secret: &[u8], req: &Request<'_>) -> Outcome {
    let url = url("plivo", req)?;
    let headers = Headers::new(req.headers);
    const SIG: &str = "x-plivo-signature-v3";
    let value = headers.required(SIG)?;
    let nonce = headers.required("x-plivo-signature-v3-nonce")?;
    let without_fragment = url.split('#').next().unwrap_or(url);
    let (base, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let mut query_params = parse_form(query.as_bytes());
    query_params.sort_unstable();
    let query_text = query_params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut post =
        if !req.method.eq_ignore_ascii_case("GET") && is_form(headers.optional("content-type")?) {
            parse_form(req.body)
        } else {
            Vec::new()
        };
    post.sort_unstable();
    let mut signed = base.to_owned();
    if !query_text.is_empty() || !post.is_empty() {
        signed.push('?');
        signed.push_str(&query_text);
    }
    if !query_text.is_empty() && !post.is_empty() {
        signed.push('.');
    }
    for (k, v) in &post {
        signed.push_str(k);
        signed.push_str(v);
    }
    signed.push('.');
    signed.push_str(nonce);
    let expected = encode(
        Enc::Base64,
        &hmac(Alg::Sha256, secret, &[signed.as_bytes()]),
    );
    any_matches(Enc::Base64, &expected, value.split(',').map(trim))
}

/// VMware Workspace ONE event notifications carry HTTP Basic credentials;
/// the secret is `username::password` (the public integration guide's form).
fn basic_auth(secret: &[u8], req: &Request<'_>) -> Outcome {
    let text = text_secret(secret)?;
    let (user, password) = text
        .split_once("::")
        .ok_or_else(|| Error::InvalidSecret("the vmware secret is 'username::password'".into()))?;
    let value = Headers::new(req.headers).required("authorization")?;
    let (scheme, credentials) = value
        .split_once(' ')
        .ok_or_else(|| malformed("authorization"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("authorization").into());
    }
    let expected = encode(Enc::Base64, format!("{user}:{password}").as_bytes());
    if equal(trim(credentials).as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Verdict::fail("token mismatch").into())
    }
}
