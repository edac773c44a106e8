//! Geo and ASN lookups in MaxMind DB (`.mmdb`) files: what
//! `conn.client_ip.geo.*`, `conn.client_ip.as.*` and `conn.geo.*` read.
//!
//! One reader for every database of the GeoIP2 / GeoLite2 schema (City,
//! Country, ASN, or a file holding both kinds of field): a record gives the
//! fields it has and the others are empty, as Traffic Policy reads data the
//! edge does not have (`''`, `false`, `0`). The mapping from the MaxMind
//! record to the policy's fields is in `docs/policy.md`; the Python twin
//! (`edgeward.ipintel.reference`) applies the same one to the PyPI reader's
//! records, and the tests check that both agree.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

use crate::ipnet::Addr;

#[cfg(test)]
mod tests;

/// A location as Traffic Policy shows it: every field is text (numbers
/// written as Go's `strconv.FormatFloat(f, 'f', -1, 64)` would), except
/// `is_eu`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    pub city: String,
    pub continent: String,
    pub country: String,
    pub country_code: String,
    pub is_eu: bool,
    pub latitude: String,
    pub longitude: String,
    pub metro_code: String,
    pub postal_code: String,
    pub radius: String,
    pub subdivision: String,
    pub timezone: String,
}

/// What one database knows of one address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeoRecord {
    /// Where the address is (`location`, `city`, `country`...).
    pub location: Location,
    /// Where its block is registered (`registered_country`: country-level
    /// fields only, the schema has no registered city).
    pub registered_location: Location,
    /// `autonomous_system_number` (0 when absent).
    pub as_number: u64,
    /// `autonomous_system_organization`.
    pub as_organization: String,
}

/// Opening or reading a database failed.
#[derive(Debug)]
pub struct GeoError(String);

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GeoError {}

impl From<MaxMindDbError> for GeoError {
    fn from(error: MaxMindDbError) -> Self {
        GeoError(error.to_string())
    }
}

/// A MaxMind DB file read into memory. Immutable, `Send + Sync`.
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
}

impl GeoDb {
    /// Reads the whole file and checks its metadata.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, GeoError> {
        Self::from_bytes(std::fs::read(path).map_err(|e| GeoError(e.to_string()))?)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {
            reader: Reader::from_source(bytes)?,
        })
    }

    /// The metadata's `database_type`, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The record of `addr`, or None when the database has none. An
    /// IPv4 address is looked up as IPv4 (in an IPv6 database, in its
    /// IPv4 subtree). A record that does not decode is an error.
    pub fn lookup(&self, addr: Addr) -> Result<Option<GeoRecord>, GeoError> {
        let ip = match addr {
            Addr::V4(bits) => IpAddr::V4(Ipv4Addr::from(bits)),
            Addr::V6(bits) => IpAddr::V6(Ipv6Addr::from(bits)),
        };
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None); // an IPv4-only database knows no IPv6 address
        }
        let found = self.reader.lookup(ip)?;
        Ok(found.decode::<Raw<'_>>()?.map(|raw| raw.record()))
    }
}

// --- the record as stored (the fields of the GeoIP2 schemas that are read) ---

/// An unsigned integer of whatever width the database stores (the schema
/// says uint16 for `accuracy_radius`, uint32 for ASNs; other writers vary).
#[derive(Clone, Copy)]
struct Uint(u64);

impl<'de> Deserialize<'de> for Uint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Uint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Uint, E> {
                Ok(Uint(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Uint, E> {
                u64::try_from(v)
                    .map(Uint)
                    .map_err(|_| E::custom("a negative integer"))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Uint, E> {
                u64::try_from(v)
                    .map(Uint)
                    .map_err(|_| E::custom("an integer over 64 bits"))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize, Default)]
struct Continent<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize, Default)]
struct Country<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(default)]
    is_in_european_union: Option<bool>,
}

#[derive(Deserialize, Default)]
struct RawLocation<'a> {
    #[serde(default)]
    accuracy_radius: Option<Uint>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    metro_code: Option<Uint>,
    #[serde(borrow, default)]
    time_zone: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Postal<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Raw<'a> {
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(borrow, default)]
    continent: Option<Continent<'a>>,
    #[serde(borrow, default)]
    country: Option<Country<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Country<'a>>,
    #[serde(borrow, default)]
    location: Option<RawLocation<'a>>,
    #[serde(borrow, default)]
    postal: Option<Postal<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(default)]
    autonomous_system_number: Option<Uint>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

fn name(names: Option<&Names<'_>>) -> String {
    names.and_then(|n| n.en).unwrap_or("").to_owned()
}

/// A number as Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest
/// text that reads back as `f`, never in exponent form, no `.0` for whole
/// numbers. Rust's `Display` of `f64` is exactly that.
pub fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned(); // also -0
    }
    format!("{f}")
}

impl Raw<'_> {
    fn record(self) -> GeoRecord {
        let country = self.country.unwrap_or_default();
        let registered = self.registered_country.unwrap_or_default();
        let location = self.location.unwrap_or_default();
        let subdivision = self
            .subdivisions
            .as_deref()
            .and_then(|s| s.first())
            .map(|s| name(s.names.as_ref()))
            .unwrap_or_default();
        let continent = name(self.continent.and_then(|c| c.names).as_ref());
        GeoRecord {
            location: Location {
                city: name(self.city.and_then(|c| c.names).as_ref()),
                continent,
                country: name(country.names.as_ref()),
                country_code: country.iso_code.unwrap_or("").to_owned(),
                is_eu: country.is_in_european_union.unwrap_or(false),
                latitude: location.latitude.map(go_float).unwrap_or_default(),
                longitude: location.longitude.map(go_float).unwrap_or_default(),
                metro_code: location
                    .metro_code
                    .map(|m| m.0.to_string())
                    .unwrap_or_default(),
                postal_code: self.postal.and_then(|p| p.code).unwrap_or("").to_owned(),
                radius: location
                    .accuracy_radius
                    .map(|r| r.0.to_string())
                    .unwrap_or_default(),
                subdivision,
                timezone: location.time_zone.unwrap_or("").to_owned(),
            },
            registered_location: Location {
                country: name(registered.names.as_ref()),
                country_code: registered.iso_code.unwrap_or("").to_owned(),
                is_eu: registered.is_in_european_union.unwrap_or(false),
                ..Location::default()
            },
            as_number: self.autonomous_system_number.map_or(0, |n| n.0),
            as_organization: self.autonomous_system_organization.unwrap_or("").to_owned(),
        }
    }
}
