//! Segment names: checking a user's name, and generating unpredictable ones.

use crate::error::{Error, Result};
use crate::sys;

/// Every generated name starts with this, so stale segments can be found and cleaned.
pub(crate) const PREFIX: &str = "shmpool-";

/// The longest name accepted (NAME_MAX is 255; room is left for the leading '/').
const MAX_LEN: usize = 250;

/// Checks a user-given name and returns it without its leading '/', the form `name()` reports
/// and Python's `SharedMemory(name=...)` takes.
pub(crate) fn validate(name: &str) -> Result<String> {
    let invalid = |reason| Err(Error::InvalidName { name: name.to_string(), reason });
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return invalid("it is empty");
    }
    if bare.len() > MAX_LEN {
        return invalid("it is longer than 250 bytes");
    }
    if bare.contains('/') {
        return invalid("it contains '/' after the optional leading one");
    }
    if bare.contains('\0') {
        return invalid("it contains a NUL byte");
    }
    if bare == "." || bare == ".." {
        return invalid("'.' and '..' are not segment names");
    }
    Ok(bare.to_string())
}

/// A fresh unpredictable name: `shmpool-<pid>-<16 random hex digits>`.
pub(crate) fn generate() -> String {
    format!("{PREFIX}{}-{:016x}", sys::proc::getpid(), sys::proc::random_u64())
}

/// The path shm_open takes for a bare name.
pub(crate) fn os_name(bare: &str) -> String {
    format!("/{bare}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_checked() {
        assert_eq!(validate("/abc").unwrap(), "abc");
        assert_eq!(validate("abc").unwrap(), "abc");
        for bad in ["", "/", "a/b", "//a", "a\0b", ".", ".."] {
            assert!(matches!(validate(bad), Err(Error::InvalidName { .. })), "{bad:?} accepted");
        }
        assert!(validate(&"x".repeat(251)).is_err());
    }

    #[test]
    fn generated_names_differ_and_carry_the_prefix() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(validate(&a).unwrap(), a);
    }
}
