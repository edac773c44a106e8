//! The provider table: each provider id, its scheme and, where it signs a
//! timestamp and documents a tolerance, that tolerance. The sources of every
//! row are listed in `docs/webhooks.md`.

use super::encoding::{Alg, Enc};
use super::schemes::{BodySig, Scheme};

/// The tolerance for providers whose documentation gives none (ngrok's rule).
pub const DEFAULT_TOLERANCE_S: f64 = 180.0;

const fn body(header: &'static str, alg: Alg, enc: Enc, prefix: &'static str) -> Scheme {
    Scheme::Body(BodySig {
        header,
        alg,
        enc,
        prefix,
        list: false,
    })
}

/// A comma-separated list of `prefix<signature>` entries; any may match.
const fn body_list(header: &'static str, prefix: &'static str) -> Scheme {
    Scheme::Body(BodySig {
        header,
        alg: Alg::Sha256,
        enc: Enc::Hex,
        prefix,
        list: true,
    })
}

/// HMAC-SHA256 (hex) of `{lead}{timestamp}{sep}{body}`, the timestamp in its own header.
const fn timestamped(
    header: &'static str,
    prefix: &'static str,
    ts_header: &'static str,
    lead: &'static str,
    sep: &'static str,
) -> Scheme {
    let sig = BodySig {
        header,
        alg: Alg::Sha256,
        enc: Enc::Hex,
        prefix,
        list: false,
    };
    Scheme::Timestamped {
        sig,
        ts_header,
        lead,
        sep,
    }
}

/// `t=<timestamp>,v1=<hex>` in one header; HMAC-SHA256 of `{t}.{body}`.
const fn key_value(header: &'static str, ts_key: &'static str, sig_key: &'static str) -> Scheme {
    Scheme::KeyValue {
        header,
        ts_key,
        sig_key,
    }
}

use Alg::{Sha1, Sha256, Sha512};
use Enc::{Base64, Hex};

/// (id, scheme, documented timestamp tolerance in seconds)
#[rustfmt::skip]
static TABLE: &[(&str, Scheme, Option<f64>)] = &[
    ("aftership", body("aftership-hmac-sha256", Sha256, Base64, ""), None),
    ("airship", timestamped("x-ua-signature", "", "x-ua-timestamp", "", ":"), None),
    ("alchemy", body("x-alchemy-signature", Sha256, Hex, ""), None),
    ("autodesk", body("x-adsk-signature", Sha1, Hex, "sha1hash="), None),
    ("bitbucket", body("x-hub-signature", Sha256, Hex, "sha256="), None),
    ("bolt", body("x-bolt-hmac-sha256", Sha256, Base64, ""), None),
    ("box", Scheme::Box, Some(600.0)),
    ("brex", Scheme::StandardWebhooks, Some(300.0)),
    ("buildkite", key_value("x-buildkite-signature", "timestamp", "signature"), None),
    ("calendly", key_value("calendly-webhook-signature", "t", "v1"), Some(180.0)),
    ("castle", body("x-castle-signature", Sha256, Base64, ""), None),
    ("chargify", body("x-chargify-webhook-signature-hmac-sha-256", Sha256, Hex, ""), None),
    ("circleci", body_list("circleci-signature", "v1="), None),
    ("clearbit", body("x-request-signature", Sha1, Hex, "sha1="), None),
    ("clerk", Scheme::StandardWebhooks, Some(300.0)),
    ("coinbase", body("x-cc-webhook-signature", Sha256, Hex, ""), None),
    ("contentful", Scheme::Contentful, Some(30.0)),
    ("docusign", Scheme::DocuSign, None),
    ("dropbox", body("x-dropbox-signature", Sha256, Hex, ""), None),
    ("facebook_graph_api", body("x-hub-signature-256", Sha256, Hex, "sha256="), None),
    ("facebook_messenger", body("x-hub-signature-256", Sha256, Hex, "sha256="), None),
    ("frameio", timestamped("x-frameio-signature", "v0=", "x-frameio-request-timestamp", "v0:", ":"), Some(300.0)),
    ("generic", Scheme::Generic, None),
    ("github", body("x-hub-signature-256", Sha256, Hex, "sha256="), None),
    ("gitlab", Scheme::Token { header: "x-gitlab-token" }, None),
    ("go1", key_value("go1-signature", "t", "v1"), None),
    ("graphcms", Scheme::Hygraph, None),
    ("heroku", body("heroku-webhook-hmac-sha256", Sha256, Base64, ""), None),
    ("hostedhooks", key_value("hostedhooks-signature", "t", "s"), None),
    ("hubspot", Scheme::HubSpot, Some(300.0)),
    ("instagram", body("x-hub-signature-256", Sha256, Hex, "sha256="), None),
    ("intercom", body("x-hub-signature", Sha1, Hex, "sha1="), None),
    ("jira", body("x-hub-signature", Sha256, Hex, "sha256="), None),
    ("launch_darkly", body("x-ld-signature", Sha256, Hex, ""), None),
    ("linear", body("linear-signature", Sha256, Hex, ""), None),
    ("mailchimp", Scheme::Mandrill, None),
    ("mailgun", Scheme::Mailgun, None),
    ("microsoft_teams", Scheme::MicrosoftTeams, None),
    ("modern_treasury", body("x-signature", Sha256, Hex, ""), None),
    ("mongodb", body("x-mms-signature", Sha1, Base64, ""), None),
    ("mux", key_value("mux-signature", "t", "v1"), Some(300.0)),
    ("okta", Scheme::Okta, None),
    ("orb", Scheme::Orb, Some(300.0)),
    ("orbit", Scheme::Token { header: "x-orbit-signature" }, None),
    ("pagerduty", body_list("x-pagerduty-signature", "v1="), None),
    ("pinwheel", timestamped("x-pinwheel-signature", "v2=", "x-timestamp", "v2:", ":"), None),
    ("plivo", Scheme::Plivo, None),
    ("pusher", body("x-pusher-signature", Sha256, Hex, ""), None),
    ("segment", body("x-signature", Sha1, Hex, ""), None),
    ("sendgrid", Scheme::SendGrid, None),
    ("sentry", body("sentry-hook-signature", Sha256, Hex, ""), None),
    ("shopify", body("x-shopify-hmac-sha256", Sha256, Base64, ""), None),
    ("signal_sciences", body("x-sigsci-signature", Sha256, Hex, ""), None),
    ("slack", timestamped("x-slack-signature", "v0=", "x-slack-request-timestamp", "v0:", ":"), Some(300.0)),
    ("sonatype", body("x-nexus-webhook-signature", Sha1, Hex, ""), None),
    ("square", Scheme::Square, None),
    ("stripe", key_value("stripe-signature", "t", "v1"), Some(300.0)),
    ("svix", Scheme::StandardWebhooks, Some(300.0)),
    ("terraform", body("x-tfe-notification-signature", Sha512, Hex, ""), None),
    ("tiktok", key_value("tiktok-signature", "t", "s"), None),
    ("trendmicro_conformity", body("x-conformity-signature", Sha256, Hex, ""), None),
    ("twilio", Scheme::Twilio, None),
    ("twitter", body("x-twitter-webhooks-signature", Sha256, Base64, "sha256="), None),
    ("typeform", body("typeform-signature", Sha256, Base64, "sha256="), None),
    ("vmware", Scheme::BasicAuth, None),
    ("webex", body("x-spark-signature", Sha1, Hex, ""), None),
    ("whatsapp", body("x-hub-signature-256", Sha256, Hex, "sha256="), None),
    ("worldline", body("x-gcs-signature", Sha256, Base64, ""), None),
    ("xero", body("x-xero-signature", Sha256, Base64, ""), None),
    ("zendesk", Scheme::Zendesk, None),
    ("zoom", timestamped("x-zm-signature", "v0=", "x-zm-request-timestamp", "v0:", ":"), None),
];

pub(crate) fn lookup(provider: &str) -> Option<&'static Scheme> {
    TABLE
        .iter()
        .find(|(id, _, _)| *id == provider)
        .map(|(_, scheme, _)| scheme)
}

/// Every supported provider id.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(id, _, _)| *id)
}

/// The provider's documented tolerance, else [`DEFAULT_TOLERANCE_S`];
/// `None` for an unknown provider.
pub fn default_tolerance_s(provider: &str) -> Option<f64> {
    TABLE
        .iter()
        .find(|(id, _, _)| *id == provider)
        .map(|(_, _, tolerance)| tolerance.unwrap_or(DEFAULT_TOLERANCE_S))
}
