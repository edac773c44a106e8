//! Published vectors of the providers and the shared failure rules. The
//! Python suite (tests/webhooks) covers every provider on both backends.

use super::*;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn check(provider: &str, secret: &str, pairs: &[(&str, &str)], body: &[u8], now: f64) -> Verdict {
    check_url(provider, secret, pairs, body, now, None)
}

fn check_url(
    provider: &str,
    secret: &str,
    pairs: &[(&str, &str)],
    body: &[u8],
    now: f64,
    url: Option<&str>,
) -> Verdict {
    let headers = headers(pairs);
    let req = Request {
        headers: &headers,
        body,
        url,
        method: "POST",
        now,
        tolerance_s: 300.0,
    };
    verify(provider, secret.as_bytes(), &[], &req).expect("valid configuration")
}

const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn github_published_vector() {
    let secret = "It's a Secret to Everybody";
    let sig = [("X-Hub-Signature-256", GITHUB_SIG)];
    assert_eq!(
        check("github", secret, &sig, b"Hello, World!", 0.0),
        Verdict::ok()
    );
    let upper = GITHUB_SIG
        .to_ascii_uppercase()
        .replace("SHA256=", "sha256=");
    assert!(
        check(
            "github",
            secret,
            &[("x-hub-signature-256", &upper)],
            b"Hello, World!",
            0.0
        )
        .verified
    );
    let tampered = check("github", secret, &sig, b"Hello, World?", 0.0);
    assert_eq!(tampered.reason, "signature mismatch");
    let missing = check("github", secret, &[], b"Hello, World!", 0.0);
    assert_eq!(missing.reason, "missing header x-hub-signature-256");
    let twice = check("github", secret, &[sig[0], sig[0]], b"Hello, World!", 0.0);
    assert_eq!(twice.reason, "duplicate header x-hub-signature-256");
    let bare = check(
        "github",
        secret,
        &[("x-hub-signature-256", &GITHUB_SIG[7..])],
        b"Hello, World!",
        0.0,
    );
    assert_eq!(bare.reason, "malformed header x-hub-signature-256");
}

const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

#[test]
fn slack_published_vector_and_tolerance() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let pairs = [
        ("X-Slack-Request-Timestamp", "1531420618"),
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ];
    let body = SLACK_BODY.as_bytes();
    assert!(check("slack", secret, &pairs, body, 1531420618.0 + 300.0).verified);
    assert_eq!(
        check("slack", secret, &pairs, body, 1531420618.0 + 301.0).reason,
        "stale timestamp"
    );
    assert_eq!(
        check("slack", secret, &pairs, body, 1531420618.0 - 301.0).reason,
        "timestamp in the future"
    );
    assert_eq!(
        check("slack", secret, &pairs, body, f64::NAN).reason,
        "stale timestamp"
    );
}

#[test]
fn twilio_published_vectors() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let form = |caller: &str| {
        format!("CallSid=CA1234567890ABCDE&Caller=%2B{caller}&Digits=1234&From=%2B{caller}&To=%2B18005551212")
    };
    for (caller, sig) in [
        ("14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        ("14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ] {
        let pairs = [
            ("X-Twilio-Signature", sig),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        let body = form(caller);
        assert!(check_url("twilio", "12345", &pairs, body.as_bytes(), 0.0, Some(url)).verified);
        // Twilio's SDKs also accept the URL with the default port spelled out.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(
            check_url(
                "twilio",
                "12345",
                &pairs,
                body.as_bytes(),
                0.0,
                Some(with_port)
            )
            .verified
        );
        let other = check_url(
            "twilio",
            "12345",
            &pairs,
            body.as_bytes(),
            0.0,
            Some("https://evil.example/"),
        );
        assert_eq!(other.reason, "signature mismatch");
    }
}

#[test]
fn svix_published_vector() {
    let pairs = [
        ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("svix-timestamp", "1614265330"),
        (
            "svix-signature",
            "v1a,xxx v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    let body = br#"{"test": 2432232314}"#;
    assert!(
        check(
            "svix",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &pairs,
            body,
            1614265330.0
        )
        .verified
    );
    let webhook: Vec<(String, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.replace("svix-", "webhook-"), *v))
        .collect();
    let webhook: Vec<(&str, &str)> = webhook.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert!(
        check(
            "brex",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &webhook,
            body,
            1614265330.0
        )
        .verified
    );
}

const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
const SENDGRID_SIG: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";

#[test]
fn sendgrid_published_vector() {
    let body = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
    let pairs = [
        ("X-Twilio-Email-Event-Webhook-Signature", SENDGRID_SIG),
        ("X-Twilio-Email-Event-Webhook-Timestamp", "1588788367"),
    ];
    assert!(check("sendgrid", SENDGRID_KEY, &pairs, body, 1588788367.0).verified);
    assert_eq!(
        check("sendgrid", SENDGRID_KEY, &pairs, b"{}", 1588788367.0).reason,
        "signature mismatch"
    );
    let bad_ts = [
        pairs[0],
        ("X-Twilio-Email-Event-Webhook-Timestamp", "timestamp"),
    ];
    assert_eq!(
        check("sendgrid", SENDGRID_KEY, &bad_ts, body, 1588788367.0).reason,
        "malformed timestamp"
    );
}

#[test]
fn configuration_errors() {
    let req = Request {
        headers: &[],
        body: b"",
        url: None,
        method: "POST",
        now: 0.0,
        tolerance_s: 300.0,
    };
    assert_eq!(
        verify("nope", b"s", &[], &req),
        Err(Error::UnknownProvider("nope".into()))
    );
    assert!(matches!(
        verify("github", b"", &[], &req),
        Err(Error::InvalidSecret(_))
    ));
    assert_eq!(
        verify("twilio", b"s", &[], &req),
        Err(Error::UrlRequired("twilio"))
    );
    assert!(matches!(
        verify("sendgrid", b"not a key", &[], &req),
        Err(Error::InvalidSecret(_))
    ));
    let opts = vec![("algorithm".to_owned(), "md5".to_owned())];
    assert!(matches!(
        verify("generic", b"s", &opts, &req),
        Err(Error::InvalidOption(_))
    ));
    assert!(matches!(
        verify("github", b"s", &opts, &req),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn every_provider_has_a_tolerance() {
    assert!(provider_names().count() >= 40);
    for name in provider_names() {
        assert!(default_tolerance_s(name).is_some_and(|t| t > 0.0));
    }
    assert_eq!(default_tolerance_s("stripe"), Some(300.0));
    assert_eq!(default_tolerance_s("zoom"), Some(DEFAULT_TOLERANCE_S));
}

const ORB_PAYLOAD: &str = r#"{"id": "o4mmewpfNNTnjfZc", "created_at": "2024-03-27T15:42:29+00:00", "type": "resource_event.test", "properties": {"message": "A test webhook from Orb. Happy testing!"}}"#;

#[test]
fn orb_published_vector() {
    // orbcorp/orb-python tests/api_resources/test_webhooks.py
    let secret = "c-UGKYdnhHh436B_sMouYAPUvXyWpzOdunZBV5dFSD8";
    let sig = "v1=9d25de966891ab0bc18754faf8d83d0980b44ae330fcc130b41a6cf3daf1f391";
    let pairs = [
        ("X-Orb-Timestamp", "2024-03-27T15:42:29.551"),
        ("X-Orb-Signature", sig),
    ];
    let now = 1_711_554_149.551;
    assert!(check("orb", secret, &pairs, ORB_PAYLOAD.as_bytes(), now).verified);
    assert_eq!(
        check("orb", secret, &pairs, ORB_PAYLOAD.as_bytes(), now + 360.0).reason,
        "stale timestamp"
    );
    assert_eq!(
        check("orb", "foo", &pairs, ORB_PAYLOAD.as_bytes(), now).reason,
        "signature mismatch"
    );
}

#[test]
fn new_providers_configuration_errors() {
    let req = Request {
        headers: &[],
        body: b"",
        url: None,
        method: "POST",
        now: 0.0,
        tolerance_s: 300.0,
    };
    assert!(matches!(
        verify("vmware", b"no separator", &[], &req),
        Err(Error::InvalidSecret(_))
    ));
    for provider in ["plivo", "mailchimp", "contentful"] {
        assert!(matches!(
            verify(provider, b"s", &[], &req),
            Err(Error::UrlRequired(_))
        ));
    }
}

#[test]
fn contentful_path_normalisation() {
    use super::form::contentful_path;
    assert_eq!(
        contentful_path("/api/resources?q=1&w=2"),
        "/api/resources?q%253D1%2526w%253D2"
    );
    assert_eq!(contentful_path("/a b/é"), "/a%20b/%C3%A9");
    assert_eq!(contentful_path("/a?b?c"), "/a?b");
}

#[test]
fn json_strings_as_javascript_writes_them() {
    use super::form::json_string;
    assert_eq!(
        json_string("a\"\\\n\u{1}\u{7f}é"),
        "\"a\\\"\\\\\\n\\u0001\u{7f}é\""
    );
}
