//! The test databases are written by `tests/variables/geodata.py`
//! (mmdb-writer, GeoIP2 schemas); the Python tests check the same records
//! through both backends.
use super::*;

const CITY: &[u8] = include_bytes!("../../testdata/city.mmdb");
const ASN: &[u8] = include_bytes!("../../testdata/asn.mmdb");

fn lookup(db: &[u8], ip: &str) -> Option<GeoRecord> {
    GeoDb::from_bytes(db.to_vec())
        .unwrap()
        .lookup(Addr::parse(ip).unwrap())
        .unwrap()
}

#[test]
fn city_record() {
    let r = lookup(CITY, "127.0.0.1").unwrap();
    assert_eq!(r.location.city, "San Francisco");
    assert_eq!(r.location.continent, "North America");
    assert_eq!(r.location.country, "United States");
    assert_eq!(r.location.country_code, "US");
    assert!(!r.location.is_eu);
    assert_eq!(r.location.latitude, "37.7749");
    assert_eq!(r.location.longitude, "-122.4194");
    assert_eq!(r.location.metro_code, "807");
    assert_eq!(r.location.postal_code, "94107");
    assert_eq!(r.location.radius, "10");
    assert_eq!(r.location.subdivision, "California");
    assert_eq!(r.location.timezone, "America/Los_Angeles");
    assert_eq!(r.registered_location.country_code, "DE");
    assert!(r.registered_location.is_eu);
    assert_eq!(r.registered_location.city, "");
    assert_eq!(r.as_number, 0);
}

#[test]
fn mapped_ipv6_and_misses() {
    assert_eq!(
        lookup(CITY, "::ffff:81.2.69.7").unwrap().location.city,
        "London"
    );
    assert_eq!(
        lookup(CITY, "89.160.20.1").unwrap().location.city,
        "Linköping"
    );
    assert!(lookup(CITY, "89.160.20.1").unwrap().location.is_eu);
    assert_eq!(
        lookup(CITY, "2001:db8::1").unwrap().location.country,
        "Japan"
    );
    assert_eq!(lookup(CITY, "8.8.8.8"), None);
    let country_only = lookup(CITY, "203.0.113.1").unwrap();
    assert_eq!(country_only.location.country_code, "AU");
    assert_eq!(country_only.location.latitude, "");
}

#[test]
fn asn_record() {
    let r = lookup(ASN, "2001:db8::1").unwrap();
    assert_eq!(r.as_number, 4_200_000_000);
    assert_eq!(r.as_organization, "AMAZON-02");
    assert_eq!(r.location, Location::default());
}

#[test]
fn not_a_database() {
    assert!(GeoDb::from_bytes(b"not an mmdb".to_vec()).is_err());
    assert!(GeoDb::open("/nonexistent/file.mmdb").is_err());
}

#[test]
fn go_float_text() {
    assert_eq!(go_float(37.7749), "37.7749");
    assert_eq!(go_float(-0.0931), "-0.0931");
    assert_eq!(go_float(37.0), "37");
    assert_eq!(go_float(0.00001), "0.00001");
    assert_eq!(go_float(-0.0), "0");
}
