//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B), decoding only: a
//! nibble-at-a-time state machine (as nghttp2 and the `h2` crate decode)
//! built once from the code table. Every state is a node of the code tree;
//! each 4 bits of input move it, emitting at most one symbol, so a string
//! costs two table reads per byte and no allocation beyond its output.

use std::sync::OnceLock;

/// RFC 7541 Appendix B: (code, length in bits) of each symbol; 256 is EOS.
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x00, 5),
    (0x01, 5),
    (0x02, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x03, 5),
    (0x23, 6),
    (0x04, 5),
    (0x24, 6),
    (0x05, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x06, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x07, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x08, 5),
    (0x09, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

const EOS: u16 = 256;

/// One transition: the state after a nibble and what it produced.
#[derive(Clone, Copy, Default)]
struct Step {
    next: u8,
    /// `EMIT`, `FAIL`, `ACCEPT` bits.
    flags: u8,
    symbol: u8,
}

/// The nibble completed a symbol: `symbol` is output.
const EMIT: u8 = 1;
/// The nibble completed EOS, which a string may not contain (§5.2).
const FAIL: u8 = 2;
/// The string may end after this nibble: the bits since the last symbol
/// are padding, at most 7 of them and all ones (the start of EOS).
const ACCEPT: u8 = 4;

/// 257 symbols make a full binary tree of 256 inner nodes, the states.
type Table = [[Step; 16]; 256];

/// A child in the code tree: an inner node or a symbol.
#[derive(Clone, Copy)]
enum Child {
    Empty,
    Node(u8),
    Leaf(u16),
}

/// The inner nodes' children, root first.
fn tree() -> Vec<[Child; 2]> {
    let mut nodes = vec![[Child::Empty; 2]];
    for (symbol, &(code, length)) in (0u16..).zip(CODES.iter()) {
        let mut node = 0usize;
        for shift in (0..length).rev() {
            let bit = ((code >> shift) & 1) as usize;
            if shift == 0 {
                nodes[node][bit] = Child::Leaf(symbol);
                break;
            }
            node = match nodes[node][bit] {
                Child::Node(next) => usize::from(next),
                _ => {
                    let next = nodes.len();
                    nodes.push([Child::Empty; 2]);
                    nodes[node][bit] = Child::Node(next as u8);
                    next
                }
            };
        }
    }
    nodes
}

fn build() -> Table {
    let nodes = tree();
    // a node may end a string when the path to it is all ones, at most 7 bits
    let mut padding = [false; 256];
    let mut node = 0usize;
    for _ in 0..8 {
        padding[node] = true;
        match nodes[node][1] {
            Child::Node(next) => node = usize::from(next),
            _ => unreachable!("EOS is 30 one bits"),
        }
    }
    let mut table = [[Step::default(); 16]; 256];
    for (state, row) in table.iter_mut().enumerate() {
        for (nibble, step) in row.iter_mut().enumerate() {
            let mut node = state;
            for shift in (0..4).rev() {
                match nodes[node][(nibble >> shift) & 1] {
                    Child::Node(next) => node = usize::from(next),
                    Child::Leaf(EOS) => {
                        step.flags = FAIL;
                        break;
                    }
                    Child::Leaf(symbol) => {
                        step.flags |= EMIT;
                        step.symbol = symbol as u8;
                        node = 0;
                    }
                    Child::Empty => unreachable!("the code is complete"),
                }
            }
            step.next = node as u8;
            if padding[node] && step.flags & FAIL == 0 {
                step.flags |= ACCEPT;
            }
        }
    }
    table
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Box<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Box::new(build()))
}

/// The Huffman string is not a valid encoding: EOS inside it, or padding
/// longer than 7 bits or not all ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHuffman;

/// Appends the decoding of `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), InvalidHuffman> {
    let table = table();
    // codes are at least 5 bits long
    out.reserve(src.len() * 8 / 5);
    let mut state = 0u8;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = table[usize::from(state)][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(InvalidHuffman);
            }
            if step.flags & EMIT != 0 {
                out.push(step.symbol);
            }
            state = step.next;
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(InvalidHuffman)
    }
}

/// The Huffman encoding of `src` (tests only: our encoder sends raw
/// literals, see `hpack::Encoder`).
#[cfg(test)]
pub fn encode(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bits = 0u64;
    let mut count = 0u32;
    for &byte in src {
        let (code, length) = CODES[usize::from(byte)];
        bits = (bits << length) | u64::from(code);
        count += u32::from(length);
        while count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    if count > 0 {
        let pad = 8 - count;
        out.push(((bits << pad) | ((1 << pad) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn decoded(src: &[u8]) -> Result<Vec<u8>, InvalidHuffman> {
        let mut out = Vec::new();
        decode(src, &mut out).map(|()| out)
    }

    /// The naive oracle: bit by bit against the code table.
    fn oracle(codes: &HashMap<(u32, u8), u16>, src: &[u8]) -> Result<Vec<u8>, InvalidHuffman> {
        let mut out = Vec::new();
        let (mut code, mut length) = (0u32, 0u8);
        for i in 0..src.len() * 8 {
            code = (code << 1) | u32::from((src[i / 8] >> (7 - i % 8)) & 1);
            length += 1;
            match codes.get(&(code, length)) {
                Some(&EOS) => return Err(InvalidHuffman),
                Some(&symbol) => {
                    out.push(symbol as u8);
                    (code, length) = (0, 0);
                }
                None => {}
            }
        }
        if length <= 7 && code == (1 << length) - 1 {
            Ok(out)
        } else {
            Err(InvalidHuffman)
        }
    }

    #[test]
    fn every_symbol_round_trips() {
        for byte in 0..=255u8 {
            for text in [vec![byte], vec![byte, byte, b'a'], vec![b'0', byte]] {
                assert_eq!(decoded(&encode(&text)), Ok(text.clone()), "{text:?}");
            }
        }
        let all: Vec<u8> = (0..=255u8).rev().collect();
        assert_eq!(decoded(&encode(&all)), Ok(all));
    }

    #[test]
    fn rfc_7541_examples() {
        // C.4.1, C.4.2, C.6.1
        let cases: [(&str, &[u8]); 4] = [
            ("f1e3c2e5f23a6ba0ab90f4ff", b"www.example.com"),
            ("a8eb10649cbf", b"no-cache"),
            ("6402", b"302"),
            (
                "9d29ad171863c78f0b97c8e9ae82ae43d3",
                b"https://www.example.com",
            ),
        ];
        for (hex, text) in cases {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(decoded(&bytes), Ok(text.to_vec()));
            assert_eq!(encode(text), bytes);
        }
    }

    #[test]
    fn padding_and_eos_are_checked() {
        assert_eq!(decoded(b""), Ok(vec![]));
        assert_eq!(decoded(&[0x07]), Ok(b"0".to_vec())); // '0' (00000) + 111
        assert_eq!(decoded(&[0x00]), Err(InvalidHuffman)); // padding 000
        assert_eq!(decoded(&[0x03]), Err(InvalidHuffman)); // '0' + 011
        assert_eq!(decoded(&[0xff]), Err(InvalidHuffman)); // 8 bits of padding
        assert_eq!(decoded(&[0x1f, 0xff]), Err(InvalidHuffman)); // 'a' + 11 bits
                                                                 // EOS (30 ones) inside a string, then a valid end
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xfc]), Err(InvalidHuffman));
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xff]), Err(InvalidHuffman));
    }

    #[test]
    fn short_strings_agree_with_the_oracle() {
        let codes: HashMap<(u32, u8), u16> = (0u16..).zip(CODES).map(|(s, c)| (c, s)).collect();
        for first in 0..=255u8 {
            for second in 0..=255u8 {
                let src = [first, second, first ^ second];
                assert_eq!(decoded(&src[..1]), oracle(&codes, &src[..1]));
                assert_eq!(decoded(&src[..2]), oracle(&codes, &src[..2]), "{src:?}");
                assert_eq!(decoded(&src), oracle(&codes, &src), "{src:?}");
                // around EOS: 16 ones, then anything
                let ones = [0xff, 0xff, first, second];
                assert_eq!(decoded(&ones), oracle(&codes, &ones), "{ones:?}");
            }
        }
    }
}
