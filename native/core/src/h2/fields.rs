//! Checking received header blocks in one pass, the twin of
//! `edgeward.http2.fields`: RFC 9113 §8.2/§8.3 plus what HTTP/1.1 forwarding
//! needs (lower-case token names, no control characters in values, an
//! origin-form `:path`, `:scheme` equal to the connection's). A block that
//! breaks a rule is a malformed message (a stream error, §8.1.1).

/// A header field: (name, value), raw bytes.
pub type Field = (Vec<u8>, Vec<u8>);

/// Why a block is malformed (the message is for logs and tests only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A request's pseudo-headers lifted out, and its regular fields (cookies
/// joined into one, last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFields {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub authority: Vec<u8>,
    pub scheme: Vec<u8>,
    pub content_length: Option<u64>,
    pub headers: Vec<Field>,
}

const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A lower-case RFC 9110 token.
fn is_lower_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b) && !b.is_ascii_uppercase())
}

fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b))
}

/// A control character other than HTAB anywhere, or whitespace at an end.
fn bad_value(value: &[u8]) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    value.first().is_some_and(ws)
        || value.last().is_some_and(ws)
        || value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn connection_specific(name: &[u8]) -> bool {
    CONNECTION_SPECIFIC.contains(&name)
}

/// `/` followed by visible ASCII.
fn origin_form(path: &[u8]) -> bool {
    path.first() == Some(&b'/') && path.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

/// CONNECT's `:authority`: host:port without userinfo.
fn connect_authority(authority: &[u8]) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=[]:".contains(&b);
    if !authority.iter().all(|&b| allowed(b)) {
        return false;
    }
    let digits = authority
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    digits > 0 && authority.len() > digits && authority[authority.len() - digits - 1] == b':'
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Checks a request header block and splits it. `scheme` is the
/// connection's; `end_stream` that the block ended the stream.
pub fn parse_request(
    fields: Vec<Field>,
    scheme: &[u8],
    end_stream: bool,
) -> Result<RequestFields, Malformed> {
    let mut out = RequestFields::default();
    let mut seen = [false; 4]; // :method, :scheme, :authority, :path
    let mut cookies: Vec<Vec<u8>> = Vec::new();
    let mut host: Option<Vec<u8>> = None;
    for (name, value) in fields {
        if !value.is_empty() && bad_value(&value) {
            return Err(Malformed("invalid field value"));
        }
        if name.first() == Some(&b':') {
            if !out.headers.is_empty() || !cookies.is_empty() || host.is_some() {
                return Err(Malformed("pseudo-header after a regular field"));
            }
            let slot = match name.as_slice() {
                b":method" => 0,
                b":scheme" => 1,
                b":authority" => 2,
                b":path" => 3,
                _ => return Err(Malformed("unknown pseudo-header")),
            };
            if seen[slot] {
                return Err(Malformed("repeated pseudo-header"));
            }
            seen[slot] = true;
            match slot {
                0 => out.method = value,
                1 => out.scheme = value,
                2 => out.authority = value,
                _ => out.path = value,
            }
            continue;
        }
        if !is_lower_token(&name) {
            return Err(Malformed("invalid field name"));
        }
        if connection_specific(&name) {
            return Err(Malformed("connection-specific field"));
        }
        match name.as_slice() {
            b"cookie" => {
                cookies.push(value);
                continue;
            }
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                return Err(Malformed("TE other than trailers"));
            }
            b"host" => {
                if host.is_some() {
                    return Err(Malformed("more than one Host"));
                }
                host = Some(value.clone());
            }
            b"content-length" => {
                let n = parse_decimal(&value)
                    .ok_or(Malformed("invalid or conflicting content-length"))?;
                if out.content_length.is_some_and(|seen| seen != n) {
                    return Err(Malformed("invalid or conflicting content-length"));
                }
                out.content_length = Some(n);
            }
            _ => {}
        }
        out.headers.push((name, value));
    }
    if !cookies.is_empty() {
        out.headers
            .push((b"cookie".to_vec(), cookies.join(&b"; "[..])));
    }
    check_pseudo(&mut out, seen, scheme)?;
    if end_stream && out.content_length.is_some_and(|n| n > 0) {
        return Err(Malformed("content-length without content"));
    }
    if seen[2] {
        if host.as_ref().is_some_and(|h| *h != out.authority) {
            return Err(Malformed(":authority and Host differ"));
        }
    } else if let Some(h) = host {
        out.authority = h;
    } else {
        return Err(Malformed("neither :authority nor Host"));
    }
    Ok(out)
}

fn check_pseudo(out: &mut RequestFields, seen: [bool; 4], scheme: &[u8]) -> Result<(), Malformed> {
    if !is_token(&out.method) {
        return Err(Malformed("no :method, or not a token"));
    }
    if out.method == b"CONNECT" {
        if seen[1] || seen[3] {
            return Err(Malformed("CONNECT with :scheme or :path"));
        }
        if !connect_authority(&out.authority) {
            return Err(Malformed("CONNECT without host:port in :authority"));
        }
        out.path = out.authority.clone();
        out.scheme = scheme.to_vec();
        return Ok(());
    }
    if out.scheme != scheme {
        return Err(Malformed(":scheme other than the connection's"));
    }
    if !origin_form(&out.path) && (out.path != b"*" || out.method != b"OPTIONS") {
        return Err(Malformed("malformed :path"));
    }
    Ok(())
}

/// Checks a trailer block: regular fields only.
pub fn parse_trailers(fields: Vec<Field>) -> Result<Vec<Field>, Malformed> {
    for (name, value) in &fields {
        if !is_lower_token(name) || connection_specific(name) {
            return Err(Malformed("invalid trailer field"));
        }
        if !value.is_empty() && bad_value(value) {
            return Err(Malformed("invalid field value"));
        }
    }
    Ok(fields)
}

/// Whether h2 accepts `value` as a content-length (`bytes.isdigit`, RFC
/// 9110's 1*DIGIT); a value it refuses is a connection error there, in a
/// request's headers and in its trailers alike.
pub fn content_length_accepted(value: &[u8]) -> bool {
    !value.is_empty() && value.iter().all(u8::is_ascii_digit)
}
