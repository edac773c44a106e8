//! The Traffic Policy gateway functions (inCidrRange, ...).
use super::{Def};

pub static DEFS: &[Def] = &[];
