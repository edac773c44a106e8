//! Header look-up with the shared rules: case-insensitive names, values
//! trimmed of spaces and tabs, and a duplicated header fails the check.

use super::Verdict;

pub(crate) struct Headers<'a>(&'a [(String, String)]);

impl<'a> Headers<'a> {
    pub(crate) fn new(pairs: &'a [(String, String)]) -> Self {
        Headers(pairs)
    }

    /// The value of `name` (lower case) if present once; `Err` if repeated.
    pub(crate) fn optional(&self, name: &str) -> Result<Option<&'a str>, Verdict> {
        let mut found = None;
        for (key, value) in self.0 {
            if key.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(Verdict::fail(format!("duplicate header {name}")));
                }
                found = Some(value.trim_matches([' ', '\t']));
            }
        }
        Ok(found)
    }

    /// The value of `name`, which must be present exactly once.
    pub(crate) fn required(&self, name: &str) -> Result<&'a str, Verdict> {
        self.optional(name)?
            .ok_or_else(|| Verdict::fail(format!("missing header {name}")))
    }
}

/// The failed verdict for a header whose value does not have the documented form.
pub(crate) fn malformed(name: &str) -> Verdict {
    Verdict::fail(format!("malformed header {name}"))
}
