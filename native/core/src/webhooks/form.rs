//! URL and form-body handling for the providers that sign them. The rules
//! mirror Python's `urllib.parse.parse_qsl(..., keep_blank_values=True)`
//! so that both backends read the same parameters.

/// `application/x-www-form-urlencoded` pairs: split on `&`, skip empty
/// items, split at the first `=`, `+` is a space, `%XX` is decoded, invalid
/// UTF-8 becomes U+FFFD.
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            (unquote_plus(name), unquote_plus(value))
        })
        .collect()
}

fn unquote_plus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && hex_pair(bytes[i + 1], bytes[i + 2]).is_some() => {
                out.push(hex_pair(bytes[i + 1], bytes[i + 2]).unwrap_or_default());
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

/// The first value of query parameter `name` in `url` (before any `#`).
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let without_fragment = url.split('#').next().unwrap_or(url);
    let (_, query) = without_fragment.split_once('?')?;
    parse_form(query.as_bytes())
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Whether a `Content-Type` value names a urlencoded form.
pub(crate) fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let media = value.split(';').next().unwrap_or("");
        media
            .trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// `url` with and without an explicit port, as Twilio's SDKs try both:
/// (with the default port added or kept, with the port removed or as is).
pub(crate) fn port_variants(url: &str) -> (String, String) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_owned(), url.to_owned());
    };
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let after_bracket = authority[host_start..]
        .rfind(']')
        .map_or(host_start, |i| host_start + i);
    let port = authority[after_bracket..]
        .rfind(':')
        .map(|i| after_bracket + i)
        .filter(|&colon| {
            let digits = &authority[colon + 1..];
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        });
    match port {
        Some(colon) => {
            let without = format!("{}{}", &url[..start + colon], &url[end..]);
            (url.to_owned(), without)
        }
        None => {
            let default = if url[..scheme_end].eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            let with = format!("{}:{default}{}", &url[..end], &url[end..]);
            (with, url.to_owned())
        }
    }
}

/// HubSpot v3 signs the URI with these percent-escapes decoded.
pub(crate) fn hubspot_uri(url: &str) -> String {
    const DECODED: &[u8] = b":/?@!$'()*,;";
    let bytes = url.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = hex_pair(bytes[i + 1], bytes[i + 2]).filter(|b| DECODED.contains(b)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII was substituted for ASCII, so `out` is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| url.to_owned())
}

/// (`scheme://authority`, the rest without the fragment): the path and
/// query a request line carries. A URL without `://` is all path.
pub(crate) fn split_url(url: &str) -> (&str, &str) {
    let url = url.split('#').next().unwrap_or(url);
    let Some(scheme_end) = url.find("://") else {
        return ("", url);
    };
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    (&url[..end], &url[end..])
}

/// Contentful's `getNormalizedEncodedURI`: split at `?` (JavaScript's
/// `split`, so text after a second `?` is dropped), escape the query with
/// `querystring.escape`, then `encodeURI` the whole.
pub(crate) fn contentful_path(path: &str) -> String {
    let mut pieces = path.split('?');
    let pathname = pieces.next().unwrap_or("");
    let search = pieces.next().unwrap_or("");
    let mut joined = pathname.to_owned();
    if !search.is_empty() {
        joined.push('?');
        joined.push_str(&percent_encode(search, b"-_.!~*'()"));
    }
    percent_encode(&joined, b"-_.!~*'();/?:@&=+$,#")
}

/// Percent-encode (upper-case hex, UTF-8) every byte that is not an ASCII
/// letter or digit or in `keep`: JavaScript's `encodeURI` and
/// `encodeURIComponent` differ only in `keep`.
fn percent_encode(text: &str, keep: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 15)]));
        }
    }
    out
}

/// A JSON string literal as JavaScript's `JSON.stringify` writes it: `"`
/// and `\` escaped, `\b \t \n \f \r`, other controls as `\u00xx`, the rest
/// as is.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
