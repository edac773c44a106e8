//! Go's `net/url.Parse` and `ParseRequestURI` (Go 1.24), for `parseUrl()`,
//! `url.parse()` and `isURL()` (`docs/cel.md` §11.4). A port of Go's code,
//! on bytes as Go works; a decoded part that is not UTF-8 fails the parse
//! (CEL strings are Unicode). The reference twin is
//! `python/edgeward/expr/goneturl.py`.

/// Go's `url.URL`, field by field (`user` is `None` for Go's nil).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    pub opaque: String,
    /// username, password, password set
    pub user: Option<(String, String, bool)>,
    pub host: String,
    pub path: String,
    pub raw_path: String,
    pub omit_host: bool,
    pub force_query: bool,
    pub raw_query: String,
    pub fragment: String,
    pub raw_fragment: String,
}

type UResult<T> = Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    QueryComponent,
    Fragment,
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone) && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    if b"-_.~".contains(&c) {
        return false;
    }
    if b"$&+,/:;=?@".contains(&c) {
        match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return b"@/?:".contains(&c),
            Mode::QueryComponent => return true,
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        }
    }
    if mode == Mode::Fragment && b"!()*".contains(&c) {
        return false;
    }
    true
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn quote(b: &[u8]) -> String {
    format!("\"{}\"", String::from_utf8_lossy(b))
}

fn unescape(s: &[u8], mode: Mode) -> UResult<Vec<u8>> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let bad = || format!("invalid URL escape {}", quote(&s[i..(i + 3).min(s.len())]));
                if i + 2 >= s.len()
                    || !s[i + 1].is_ascii_hexdigit()
                    || !s[i + 2].is_ascii_hexdigit()
                {
                    return Err(bad());
                }
                if mode == Mode::Host && unhex(s[i + 1]) < 8 && &s[i..i + 3] != b"%25" {
                    return Err(bad());
                }
                if mode == Mode::Zone {
                    let v = unhex(s[i + 1]) << 4 | unhex(s[i + 2]);
                    if &s[i..i + 3] != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(bad());
                    }
                }
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        quote(&s[i..=i])
                    ));
                }
                i += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                out.push(unhex(s[i + 1]) << 4 | unhex(s[i + 2]));
                i += 3;
                continue;
            }
            b'+' if mode == Mode::QueryComponent => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

fn escape(s: &[u8], mode: Mode) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c == b' ' && mode == Mode::QueryComponent {
            out.push(b'+');
        } else if should_escape(c, mode) {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        } else {
            out.push(c);
        }
    }
    out
}

fn text(b: Vec<u8>) -> UResult<String> {
    String::from_utf8(b).map_err(|_| "the decoded URL is not valid UTF-8".to_string())
}

fn ascii(b: &[u8]) -> String {
    // Only called on bytes cut at ASCII delimiters of valid UTF-8.
    String::from_utf8_lossy(b).into_owned()
}

/// Go's `url.Parse`: a URL or a relative reference, with a fragment.
pub fn parse(raw: &str) -> UResult<Url> {
    let data = raw.as_bytes();
    let (head, frag) = match data.iter().position(|&b| b == b'#') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let mut url = parse_inner(head, false)?;
    if !frag.is_empty() {
        let fragment = unescape(frag, Mode::Fragment)?;
        url.raw_fragment = if escape(&fragment, Mode::Fragment) == frag {
            String::new()
        } else {
            ascii(frag)
        };
        url.fragment = text(fragment)?;
    }
    Ok(url)
}

/// Go's `url.ParseRequestURI`: an absolute URI or an absolute path, no
/// fragment (a `#` is part of the text).
pub fn parse_request_uri(raw: &str) -> UResult<Url> {
    parse_inner(raw.as_bytes(), true)
}

fn parse_inner(raw: &[u8], via_request: bool) -> UResult<Url> {
    if raw.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if raw.is_empty() && via_request {
        return Err("empty url".into());
    }
    let mut url = Url::default();
    if raw == b"*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, mut rest) = get_scheme(raw)?;
    url.scheme = ascii(scheme).to_ascii_lowercase();
    if rest.ends_with(b"?") && rest.iter().filter(|&&b| b == b'?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some(i) = rest.iter().position(|&b| b == b'?') {
        url.raw_query = ascii(&rest[i + 1..]);
        rest = &rest[..i];
    }
    if !rest.starts_with(b"/") {
        if !url.scheme.is_empty() {
            url.opaque = ascii(rest);
            return Ok(url);
        }
        if via_request {
            return Err("invalid URI for request".into());
        }
        let segment = rest.split(|&b| b == b'/').next().unwrap_or_default();
        if segment.contains(&b':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || (!via_request && !rest.starts_with(b"///")))
        && rest.starts_with(b"//")
    {
        let authority = &rest[2..];
        let (authority, tail) = match authority.iter().position(|&b| b == b'/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, &authority[authority.len()..]),
        };
        rest = tail;
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = text(host)?;
    } else if !url.scheme.is_empty() && rest.starts_with(b"/") {
        url.omit_host = true;
    }
    let path = unescape(rest, Mode::Path)?;
    url.raw_path = if escape(&path, Mode::Path) == rest {
        String::new()
    } else {
        ascii(rest)
    };
    url.path = text(path)?;
    Ok(url)
}

fn get_scheme(raw: &[u8]) -> UResult<(&[u8], &[u8])> {
    for (i, &c) in raw.iter().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok((&raw[..0], raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".into());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok((&raw[..0], raw)),
        }
    }
    Ok((&raw[..0], raw))
}

type UserInfo = Option<(String, String, bool)>;

fn parse_authority(authority: &[u8]) -> UResult<(UserInfo, Vec<u8>)> {
    let at = authority.iter().rposition(|&b| b == b'@');
    let host = parse_host(match at {
        Some(i) => &authority[i + 1..],
        None => authority,
    })?;
    let Some(i) = at else {
        return Ok((None, host));
    };
    let userinfo = &authority[..i];
    if !userinfo
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b))
    {
        return Err("net/url: invalid userinfo".into());
    }
    let user = match userinfo.iter().position(|&b| b == b':') {
        None => (
            text(unescape(userinfo, Mode::UserPassword)?)?,
            String::new(),
            false,
        ),
        Some(c) => (
            text(unescape(&userinfo[..c], Mode::UserPassword)?)?,
            text(unescape(&userinfo[c + 1..], Mode::UserPassword)?)?,
            true,
        ),
    };
    Ok((Some(user), host))
}

fn parse_host(host: &[u8]) -> UResult<Vec<u8>> {
    if host.starts_with(b"[") {
        let Some(i) = host.iter().rposition(|&b| b == b']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
        if let Some(zone) = host[..i].windows(3).position(|w| w == b"%25") {
            let mut out = unescape(&host[..zone], Mode::Host)?;
            out.extend(unescape(&host[zone..i], Mode::Zone)?);
            out.extend(unescape(&host[i..], Mode::Host)?);
            return Ok(out);
        }
    } else if let Some(i) = host.iter().rposition(|&b| b == b':') {
        if !valid_optional_port(&host[i..]) {
            return Err(format!("invalid port {} after host", quote(&host[i..])));
        }
    }
    unescape(host, Mode::Host)
}

fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_net_url_examples() {
        // Cases of Go's url_test.go (urltests), expected fields as Go gives them.
        let u = parse("http://www.google.com/?q=go+language#foo%26bar").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.path.as_str()),
            ("http", "www.google.com", "/")
        );
        assert_eq!(
            (u.raw_query.as_str(), u.fragment.as_str()),
            ("q=go+language", "foo&bar")
        );
        assert_eq!(u.raw_fragment, "foo%26bar");
        let u = parse("http://user:password@google.com").unwrap();
        assert_eq!(u.user, Some(("user".into(), "password".into(), true)));
        let u = parse("mailto:webmaster@golang.org").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.opaque.as_str()),
            ("mailto", "webmaster@golang.org")
        );
        let u = parse("http://www.google.com/file%20one%26two").unwrap();
        assert_eq!(
            (u.path.as_str(), u.raw_path.as_str()),
            ("/file one&two", "/file%20one%26two")
        );
        let u = parse("file:///home/adg/rabbits").unwrap();
        assert_eq!(
            (u.host.as_str(), u.path.as_str(), u.omit_host),
            ("", "/home/adg/rabbits", false)
        );
        let u = parse("http://[fe80::1%25en0]:8080/").unwrap();
        assert_eq!(u.host, "[fe80::1%en0]:8080");
        let u = parse("http://www.google.com/?").unwrap();
        assert!(u.force_query);
        assert!(parse("http://[::1]a").is_err());
        assert!(parse(":foo").is_err());
        assert!(parse("a:b/c:d").is_ok());
        assert!(parse("x:y:z/%zz").is_ok()); // opaque: never unescaped
        assert!(parse("cache_object:foo/bar").is_err()); // golang.org/issue/16822
        assert!(parse("cache_object/foo:bar").is_ok());
        assert!(parse("foo:bar/baz").is_ok());
        assert!(parse("1http://foo.com").is_err()); // first segment has a colon
        assert!(parse("http://%41:8080/").is_err()); // %41 is an ASCII escape in a host
        assert!(parse("/%ff").is_err()); // not UTF-8 once decoded
        assert!(parse_request_uri("https://ngrok.com").is_ok());
        assert!(parse_request_uri("/absolute-path").is_ok());
        assert!(parse_request_uri("not a url").is_err());
        assert!(parse_request_uri("../relative-path").is_err());
        assert!(parse_request_uri("https://a:b:c/").is_err());
    }
}
