use super::*;

/// FoxIO's published fingerprints for captures of its JA4 repository
/// (`tools/extract_ja4_vectors.py`).
const VECTORS: &str = include_str!("../../testdata/ja4_vectors.json");

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<(String, String, Vec<u8>)> {
    let parsed: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["capture"].as_str().unwrap().to_owned(),
                v["ja4"].as_str().unwrap().to_owned(),
                hex(v["records"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn published_vectors() {
    let all = vectors();
    assert!(all.len() >= 10);
    for (capture, expected, records) in all {
        let got = ja4(&records).unwrap_or_else(|| panic!("{capture}: no ClientHello"));
        if capture == "tls-non-ascii-alpn.pcapng" {
            // FoxIO's tools print "99" for a non-ASCII ALPN; the current
            // specification prints the first and last hex digits instead.
            assert_eq!(&got[..8], &expected[..8], "{capture}");
            assert_eq!(&got[10..], &expected[10..], "{capture}");
            assert_ne!(&got[8..10], "99");
        } else {
            assert_eq!(got, expected, "{capture}");
        }
    }
}

#[test]
fn every_truncation_is_none_not_a_panic() {
    for (_, _, records) in vectors() {
        for cut in 0..records.len() {
            assert_eq!(ja4(&records[..cut]), None);
        }
        // trailing bytes (the next record) change nothing
        let mut longer = records.clone();
        longer.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(ja4(&longer), ja4(&records));
    }
}

#[test]
fn a_hello_split_over_two_records() {
    let (_, expected, records) = vectors().remove(0);
    let message = &records[5..];
    let (a, b) = message.split_at(100);
    let mut split = Vec::new();
    for part in [a, b] {
        split.extend_from_slice(&[22, 3, 1]);
        split.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        split.extend_from_slice(part);
    }
    assert_eq!(ja4(&split).unwrap(), expected);
}

#[test]
fn not_a_hello() {
    assert_eq!(ja4(b""), None);
    assert_eq!(ja4(b"GET / HTTP/1.1\r\n\r\n"), None);
    assert_eq!(ja4(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), None); // a ServerHello
}

#[test]
fn spec_examples() {
    // JA4.md: the cipher and extension hashes of its worked example.
    let hello = ClientHello {
        version: 0x0303,
        ciphers: vec![
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ],
        extensions: vec![
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ],
        alpn: Some(b"h2".to_vec()),
        supported_versions: vec![0x0304, 0x0303],
        signature_algorithms: vec![
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ],
    };
    assert_eq!(hello.ja4(), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    let no_sigs = ClientHello {
        signature_algorithms: vec![],
        ..hello
    };
    assert_eq!(&no_sigs.ja4()[24..], "6d807ffa2a79");
}

#[test]
fn alpn_characters() {
    // JA4.md, ALPN Extension Value
    let cases: [(&[u8], &str); 10] = [
        (b"h2", "h2"),
        (b"http/1.1", "h1"),
        (b"a", "aa"),
        (&[0xab], "ab"),
        (&[0x20], "20"),
        (&[0xab, 0xcd], "ad"),
        (&[0x20, 0x61], "21"),
        (&[0x30, 0xab], "3b"),
        (&[0x61, 0x20], "60"),
        (&[0x30, 0xab, 0xcd, 0x31], "01"),
    ];
    for (value, expected) in cases {
        assert_eq!(alpn_text(Some(value)), expected, "{value:?}");
    }
    assert_eq!(alpn_text(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
    assert_eq!(alpn_text(None), "00");
    assert_eq!(alpn_text(Some(b"")), "00");
}

#[test]
fn grease() {
    assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
    assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0xaaab));
}
