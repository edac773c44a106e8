//! List functions of cel-go's lists extension used by policies.
use super::{Def};

pub static DEFS: &[Def] = &[];
