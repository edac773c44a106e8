//! Fuzzes webhook signature verification (`edgeward_core::webhooks::verify`,
//! behind `verify_webhook` and the `verify-webhook` action). Input: a head
//! and a body split at the first blank line; head lines are the provider,
//! the secret, the URL (`-`: none), then `name: value` headers and
//! `@key=value` options. Verification must never panic, must give the same
//! verdict twice, and its reason never contains the secret.
#![no_main]
#![forbid(unsafe_code)]

use edgeward_core::webhooks::{self, Request};
use libfuzzer_sys::fuzz_target;

fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_head(data);
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut lines = head.split('\n');
    let provider = lines.next().unwrap_or_default();
    let secret = lines.next().unwrap_or_default().as_bytes();
    let url = lines.next().filter(|u| *u != "-");
    let (mut headers, mut options) = (Vec::new(), Vec::new());
    for line in lines {
        if let Some(option) = line.strip_prefix('@') {
            let (k, v) = option.split_once('=').unwrap_or((option, ""));
            options.push((k.to_string(), v.to_string()));
        } else {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            headers.push((k.to_string(), v.trim_start().to_string()));
        }
    }
    let req = Request {
        headers: &headers,
        body,
        url,
        method: "POST",
        now: 1_700_000_000.0,
        tolerance_s: 300.0,
    };
    let first = webhooks::verify(provider, secret, &options, &req);
    let again = webhooks::verify(provider, secret, &options, &req);
    assert_eq!(format!("{first:?}"), format!("{again:?}"), "deterministic");
    if let (Ok(verdict), Ok(text)) = (&first, std::str::from_utf8(secret)) {
        let elsewhere =
            head.matches(text).count() > 1 || String::from_utf8_lossy(body).contains(text);
        if text.len() >= 8 && !elsewhere && verdict.reason.contains(text) {
            // Text that is part of the reason whatever the secret (a header
            // name, say) is not a leak: the same reason with another secret.
            let other = vec![b'#'; secret.len()];
            let again = webhooks::verify(provider, &other, &options, &req);
            let shown = again.map_or(true, |v| v.reason.contains(text));
            assert!(shown, "the reason shows the secret");
        }
    }
});
