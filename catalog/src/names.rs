//! Validation of hive, box, frame and column names.
//!
//! Names become path segments in object storage, so they are checked before
//! anything touches storage (DESIGN §4): `[A-Za-z_][A-Za-z0-9_]*`, at most 63
//! bytes. As in Postgres, names are case-insensitive: they are folded to lower
//! case, which is also what DataFusion does with unquoted SQL identifiers.

use crate::error::{Error, ObjectKind, Result};

/// Longest name accepted, in bytes (Postgres' NAMEDATALEN - 1).
pub const MAX_NAME_LEN: usize = 63;

/// The rule, stated once, so every rejection says the same thing.
pub const NAME_RULE: &str =
    "names must start with a letter or underscore, contain only ASCII letters, digits and underscores, and be at most 63 bytes";

/// Checks `name` and returns its folded (lower-case) form.
pub fn validate(kind: ObjectKind, name: &str) -> Result<String> {
    let reject = |why: &str| Error::InvalidName {
        kind,
        name: shorten(name),
        reason: format!("{why}; {NAME_RULE}"),
    };
    if name.is_empty() {
        return Err(reject("the name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(reject(&format!("the name is {} bytes long", name.len())));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('_');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(reject(&format!("it starts with {first:?}")));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(reject(&format!("it contains {bad:?}")));
    }
    Ok(name.to_ascii_lowercase())
}

/// Keeps error messages readable when someone sends a 10 kB name.
fn shorten(name: &str) -> String {
    const KEEP: usize = 80;
    if name.len() <= KEEP {
        return name.to_string();
    }
    let mut end = KEEP;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &name[..end], name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_folded_to_lower_case() {
        assert_eq!(
            validate(ObjectKind::Hive, "Analytics").unwrap(),
            "analytics"
        );
        assert_eq!(validate(ObjectKind::Frame, "_t1").unwrap(), "_t1");
    }

    #[test]
    fn hostile_names_are_rejected_with_the_rule() {
        let long = "a".repeat(10_000);
        for bad in [
            "../x",
            "a/b",
            "",
            "x'y",
            "x\"y",
            "a b",
            "1abc",
            "héllo",
            "a\u{200b}b",
            "..",
            ".",
            "a\\b",
            &long,
            "a\0b",
        ] {
            let err = validate(ObjectKind::Hive, bad).unwrap_err().to_string();
            assert!(err.contains("invalid hive name"), "{bad:?}: {err}");
            assert!(err.contains(NAME_RULE), "{bad:?}: {err}");
            assert!(err.len() < 400, "message stays short: {}", err.len());
        }
    }

    #[test]
    fn sixty_three_bytes_is_the_limit() {
        assert!(validate(ObjectKind::Box, &"b".repeat(63)).is_ok());
        assert!(validate(ObjectKind::Box, &"b".repeat(64)).is_err());
    }
}
