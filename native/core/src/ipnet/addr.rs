//! IP addresses and CIDR prefixes: parsing without allocation, masking,
//! containment.
//!
//! The accepted text is exactly what Python's `ipaddress.ip_address` accepts
//! for a `str`, minus IPv6 zone ids (`fe80::1%eth0`): dotted-quad IPv4 with
//! no leading zeros, RFC 4291 IPv6 (one `::`, 1-4 hex digits a group, an
//! IPv4 tail allowed), no surrounding whitespace. A prefix length is decimal
//! without sign or leading zeros. The reference twin and the tests rely on
//! this grammar being the same on both sides.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address as a lookup key.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are `V4`: a dual-stack
/// socket reports IPv4 clients that way, and they must meet the IPv4 rules.
/// A `V6` is therefore never in `::ffff:0:0/96`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    V4(u32),
    V6(u128),
}

/// The text is not an IP address (or a CIDR prefix, for [`Prefix::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid IP address syntax")
    }
}

impl std::error::Error for ParseError {}

const MAPPED_V4: u128 = 0xffff << 32;

impl Addr {
    /// Parses an IPv4 or IPv6 address (see the module docs for the grammar).
    pub fn parse(text: &str) -> Result<Addr, ParseError> {
        Self::parse_ascii(text.as_bytes())
    }

    /// [`Addr::parse`] on bytes; anything that is not ASCII is an error.
    pub fn parse_ascii(text: &[u8]) -> Result<Addr, ParseError> {
        match parse_v4(text) {
            Some(v4) => Ok(Addr::V4(v4)),
            None => parse_v6(text).map(Addr::from_v6).ok_or(ParseError),
        }
    }

    /// The key of a 128-bit IPv6 address: `V4` if it is IPv4-mapped.
    pub fn from_v6(bits: u128) -> Addr {
        if bits >> 32 == MAPPED_V4 >> 32 {
            Addr::V4(bits as u32)
        } else {
            Addr::V6(bits)
        }
    }

    /// Address length in bits: 32 or 128.
    pub fn bits(self) -> u8 {
        match self {
            Addr::V4(_) => 32,
            Addr::V6(_) => 128,
        }
    }
}

impl FromStr for Addr {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<Addr, ParseError> {
        Addr::parse(text)
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(v4) => Addr::V4(v4.into()),
            IpAddr::V6(v6) => Addr::from_v6(v6.into()),
        }
    }
}

impl From<Addr> for IpAddr {
    fn from(addr: Addr) -> IpAddr {
        match addr {
            Addr::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Addr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        IpAddr::from(*self).fmt(f)
    }
}

/// A CIDR prefix: a network address and a length, host bits all zero.
///
/// IPv6 prefixes inside `::ffff:0:0/96` (length 96 or more) are the IPv4
/// prefix they map (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). Shorter IPv6
/// prefixes, `::/0` included, never contain an IPv4 address: write
/// `0.0.0.0/0` for those (Go's `net.IPNet.Contains` agrees).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    network: Addr,
    len: u8,
}

/// Why a text is not an acceptable prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// Not a CIDR prefix or an address at all.
    Syntax,
    /// Well formed, but bits after the prefix length are set
    /// (`10.0.0.1/8`); `masked` is the prefix with those bits cleared.
    HostBitsSet { masked: Prefix },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Syntax => f.write_str("invalid CIDR syntax"),
            PrefixError::HostBitsSet { masked } => {
                write!(f, "host bits set (did you mean {masked}?)")
            }
        }
    }
}

impl std::error::Error for PrefixError {}

impl From<ParseError> for PrefixError {
    fn from(_: ParseError) -> PrefixError {
        PrefixError::Syntax
    }
}

impl Prefix {
    /// Parses `address/length`, or a bare address as a host prefix (/32,
    /// /128). Host bits set is an error: in an allow list `10.0.0.5/24`
    /// is far more often a typo than a wish to allow the whole /24.
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        Self::parse_ascii(text.as_bytes())
    }

    /// [`Prefix::parse`] on bytes; anything that is not ASCII is an error.
    pub fn parse_ascii(text: &[u8]) -> Result<Prefix, PrefixError> {
        let (bits, is_v6, len) = split_prefix(text)?;
        let masked = Prefix::from_bits(bits, is_v6, len);
        if masked.raw_network(is_v6) == bits {
            Ok(masked)
        } else {
            Err(PrefixError::HostBitsSet { masked })
        }
    }

    /// Like [`Prefix::parse`], but clears host bits instead of refusing
    /// them, as Go's `net.ParseCIDR` (and so CEL's `inCidrRange`) does.
    pub fn parse_masked(text: &str) -> Result<Prefix, PrefixError> {
        let (bits, is_v6, len) = split_prefix(text.as_bytes())?;
        Ok(Prefix::from_bits(bits, is_v6, len))
    }

    /// The prefix of `len` bits containing `addr` (host bits cleared).
    /// `None` if `len` exceeds the address length.
    pub fn new(addr: Addr, len: u8) -> Option<Prefix> {
        match addr {
            Addr::V4(v4) if len <= 32 => Some(Prefix {
                network: Addr::V4(v4 & mask32(len)),
                len,
            }),
            Addr::V6(v6) if len <= 128 => Some(Prefix {
                network: Addr::V6(v6 & mask128(len)),
                len,
            }),
            _ => None,
        }
    }

    pub fn network(self) -> Addr {
        self.network
    }

    /// Number of leading bits that are fixed (0..=32 or 0..=128).
    pub fn prefix_len(self) -> u8 {
        self.len
    }

    pub fn contains(self, addr: Addr) -> bool {
        match (self.network, addr) {
            (Addr::V4(net), Addr::V4(a)) => a & mask32(self.len) == net,
            (Addr::V6(net), Addr::V6(a)) => a & mask128(self.len) == net,
            _ => false,
        }
    }

    /// `bits` is a raw 128-bit IPv6 address if `is_v6`, else an IPv4 one.
    fn from_bits(bits: u128, is_v6: bool, len: u8) -> Prefix {
        if !is_v6 {
            Prefix::new(Addr::V4(bits as u32), len)
        } else if len >= 96 && bits & !0xffff_ffff == MAPPED_V4 {
            Prefix::new(Addr::V4(bits as u32), len - 96)
        } else {
            Some(Prefix {
                network: Addr::V6(bits & mask128(len)),
                len,
            })
        }
        .expect("length checked by split_prefix")
    }

    /// The network as the raw bits it was written in.
    fn raw_network(self, is_v6: bool) -> u128 {
        match self.network {
            Addr::V4(v4) if is_v6 => MAPPED_V4 | u128::from(v4),
            Addr::V4(v4) => u128::from(v4),
            Addr::V6(v6) => v6,
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(text: &str) -> Result<Prefix, PrefixError> {
        Prefix::parse(text)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// `address[/length]` -> (raw address bits, written as IPv6?, length).
fn split_prefix(text: &[u8]) -> Result<(u128, bool, u8), PrefixError> {
    let (addr_text, len_text) = match text.iter().position(|&b| b == b'/') {
        Some(slash) => (&text[..slash], Some(&text[slash + 1..])),
        None => (text, None),
    };
    let (bits, is_v6) = match parse_v4(addr_text) {
        Some(v4) => (u128::from(v4), false),
        None => (parse_v6(addr_text).ok_or(PrefixError::Syntax)?, true),
    };
    let max = if is_v6 { 128 } else { 32 };
    let len = match len_text {
        None => max,
        Some(digits) => parse_decimal(digits, max).ok_or(PrefixError::Syntax)?,
    };
    Ok((bits, is_v6, len as u8))
}

/// 1-3 ASCII digits, no leading zero (except "0" itself), at most `max`.
fn parse_decimal(digits: &[u8], max: u32) -> Option<u32> {
    if digits.is_empty() || digits.len() > 3 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut value = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(d - b'0');
    }
    (value <= max).then_some(value)
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Dotted-quad IPv4: exactly four decimal octets.
fn parse_v4(text: &[u8]) -> Option<u32> {
    let mut addr = 0;
    let mut rest = text;
    for octet in 0..4 {
        let digits = rest
            .iter()
            .take(3)
            .take_while(|b| b.is_ascii_digit())
            .count();
        addr = addr << 8 | parse_decimal(&rest[..digits], 255)?;
        rest = &rest[digits..];
        if octet < 3 {
            rest = rest.strip_prefix(b".")?;
        }
    }
    rest.is_empty().then_some(addr)
}

/// RFC 4291 text form: eight groups of 1-4 hex digits, or fewer with one
/// `::` standing for at least one zero group; the last two groups may be
/// written as a dotted-quad IPv4 address.
fn parse_v6(text: &[u8]) -> Option<u128> {
    let mut groups = [0u16; 8];
    let mut count = 0; // groups parsed
    let mut gap = None; // index in `groups` where "::" stands
    let mut rest = text;
    if let Some(after) = rest.strip_prefix(b"::") {
        gap = Some(0);
        rest = after;
    }
    while !rest.is_empty() {
        let digits = rest
            .iter()
            .take(4)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if rest.get(digits) == Some(&b'.') {
            // An IPv4 tail: the last two groups, nothing may follow.
            let v4 = parse_v4(rest)?;
            if count > 6 {
                return None;
            }
            groups[count] = (v4 >> 16) as u16;
            groups[count + 1] = v4 as u16;
            count += 2;
            break;
        }
        if digits == 0 || count == 8 {
            return None;
        }
        groups[count] = rest[..digits]
            .iter()
            .fold(0, |acc, &d| acc << 4 | hex_value(d));
        count += 1;
        rest = &rest[digits..];
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(b":")?;
        if let Some(after) = rest.strip_prefix(b":") {
            if gap.is_some() {
                return None;
            }
            gap = Some(count);
            rest = after;
        } else if rest.is_empty() {
            return None; // a single trailing ':'
        }
    }
    let mut bits = 0u128;
    match gap {
        None if count == 8 => {
            for g in groups {
                bits = bits << 16 | u128::from(g);
            }
        }
        Some(at) if count < 8 => {
            for (i, &g) in groups[..count].iter().enumerate() {
                let slot = if i < at { i } else { i + 8 - count };
                bits |= u128::from(g) << (16 * (7 - slot));
            }
        }
        _ => return None,
    }
    Some(bits)
}

fn hex_value(digit: u8) -> u16 {
    match digit {
        b'0'..=b'9' => u16::from(digit - b'0'),
        _ => u16::from((digit | 0x20) - b'a' + 10),
    }
}
