//! IP prefix matching: the engine of `restrict-ips`, IP policies, CEL's
//! `inCidrRange`/`inCidrRanges`, and IP category / geo tables.
//!
//! ```
//! use edgeward_core::ipnet::{Addr, IpPolicy, IpTable, Prefix};
//!
//! let cidrs = |list: &[&str]| -> Vec<Prefix> {
//!     list.iter().map(|c| c.parse().unwrap()).collect()
//! };
//! let policy = IpPolicy::new(cidrs(&["10.0.0.0/8", "::/0"]), cidrs(&["10.1.0.0/16"]));
//! assert!(policy.decide("10.2.3.4".parse().unwrap()));
//! assert!(!policy.decide("::ffff:10.1.2.3".parse().unwrap())); // IPv4-mapped
//!
//! let table = IpTable::new([("10.0.0.0/8".parse().unwrap(), "corp"),
//!                           ("10.9.0.0/16".parse().unwrap(), "lab")]);
//! assert_eq!(table.lookup(Addr::parse("10.9.8.7").unwrap()), Some(&"lab"));
//! assert_eq!(Prefix::parse("10.0.0.1/8").unwrap_err().to_string(),
//!            "host bits set (did you mean 10.0.0.0/8?)");
//! ```
//!
//! The semantics (mapped addresses, host bits, precedence) and the design
//! are in `docs/ipnet.md`.

mod addr;
mod policy;
mod ranges;
mod table;

#[cfg(test)]
mod tests;

pub use addr::{Addr, ParseError, Prefix, PrefixError};
pub use policy::IpPolicy;
pub use table::IpTable;
