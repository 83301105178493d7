//! The blocklist of common passwords (security requirement CR 1.7, issue 3
//! "at least the 10,000 most common"): [`is_common`].
//!
//! The list is the head of the one the `zxcvbn` crate (MIT licence) ranks as
//! its "passwords" dictionary: Dropbox zxcvbn's frequency list from Mark
//! Burnett's ten million leaked passwords. `common_passwords.txt` holds its
//! first [`COMMON_LIST_LEN`] entries in rank order, lower case, one a line,
//! copied from `zxcvbn-3.1.1/src/frequency_lists.rs` (`PASSWORDS`, with the
//! Rust escape `\'` undone); a test checks the copy against the crate.
//!
//! Why a copy: the crate keeps its lists private and only exposes the
//! cheapest explanation of a password. Asking it "is this one dictionary
//! match of rank ≤ 10,000 covering the whole password?" misses about a hundred of the
//! 10,000, among them `11111111` (rank 63, explained as a repeat), `13579`
//! (a sequence) and `devil` (the English word "lived" reversed). So the
//! exact entries are looked up here (ignoring case, and reversed), and
//! zxcvbn is asked only about variants it is good at: l33t spellings
//! (`P@55w0rd`), case and reversal combined with those.
//!
//! Not here: strength scoring beyond the blocklist (a password such as
//! `passwordpassword` is not on the list), the account-name rule (see
//! [`super::policy`]).

use std::collections::HashSet;
use std::sync::LazyLock;

use zxcvbn::matching::patterns::{DictionaryPattern, MatchPattern};

/// How many of the most common passwords are refused.
pub const COMMON_LIST_LEN: usize = 10_000;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

struct Blocklist {
    words: HashSet<&'static str>,
    /// No variant zxcvbn knows changes the length (l33t substitutes one
    /// character for one), so longer passwords need no lookup at all. This
    /// also bounds zxcvbn's cost, which grows fast with length (over a
    /// second for 100 l33t-heavy characters at opt-level 1).
    longest_chars: usize,
}

static BLOCKLIST: LazyLock<Blocklist> = LazyLock::new(|| {
    let words: HashSet<&'static str> = COMMON_PASSWORDS.lines().collect();
    let longest_chars = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
    Blocklist {
        words,
        longest_chars,
    }
});

/// Whether `password` is one of the [`COMMON_LIST_LEN`] most common
/// passwords, ignoring case, reversed, or in a l33t spelling zxcvbn
/// recognises (`P@ssw0rd`, `dr4g0n`).
///
/// The whole password must be the common one: `password` is common,
/// `password-fjord-walnut` is not. Costs well under a millisecond for most
/// passwords and up to about ten for a short one full of l33t characters.
pub fn is_common(password: &str) -> bool {
    let list = &*BLOCKLIST;
    let chars = password.chars().count();
    if chars == 0 || chars > list.longest_chars {
        return false;
    }
    let lower = password.to_lowercase();
    if list.words.contains(lower.as_str()) {
        return true;
    }
    let reversed: String = lower.chars().rev().collect();
    list.words.contains(reversed.as_str()) || variant_of_common(password, chars)
}

/// zxcvbn explains the whole password as one word of its passwords
/// dictionary within the blocklist's ranks, possibly l33t, reversed or with
/// changed case.
fn variant_of_common(password: &str, chars: usize) -> bool {
    let entropy = zxcvbn::zxcvbn(password, &[]);
    let [only] = entropy.sequence() else {
        return false;
    };
    let whole = only.i == 0 && only.j.checked_add(1) == Some(chars);
    whole
        && match &only.pattern {
            MatchPattern::Dictionary(d) => in_passwords_dictionary(d) && d.rank <= COMMON_LIST_LEN,
            _ => false,
        }
}

/// The crate's dictionary type lives in a private module and cannot be
/// named, so it is recognised by its debug name; the tests fail if that
/// ever changes.
fn in_passwords_dictionary(d: &DictionaryPattern) -> bool {
    format!("{:?}", d.dictionary_name) == "Passwords"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_well_known_passwords() {
        for password in [
            "password", "123456", "qwerty", "P@ssw0rd", "iloveyou", "dragon",
        ] {
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn refuses_case_reversed_and_l33t_variants() {
        for password in [
            "PASSWORD", "Dragon", "drowssap", "DROWSSAP", "P@55w0rd", "dr4g0n", "m0nk3y",
            "f00tb@ll",
        ] {
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn refuses_entries_zxcvbn_explains_otherwise() {
        for password in ["11111111", "13579", "devil", "trebor", "cherry1", "st0n3"] {
            assert!(is_common(password), "{password}");
            assert!(
                !variant_of_common(password, password.chars().count()),
                "{password}"
            );
        }
    }

    #[test]
    fn accepts_strong_passphrases() {
        for password in [
            "correct horse battery staple",
            "plankton ferry orbits lighthouse",
            "Tr0ub4dor&3",
            "fjord-walnut-7",
            "password-fjord-walnut",
            "ßüéñøåçæ",
        ] {
            assert!(!is_common(password), "{password}");
        }
    }

    #[test]
    fn empty_and_overlong_passwords_are_not_on_the_list() {
        assert!(!is_common(""));
        assert!(!is_common(&"password".repeat(3)));
        assert!(!is_common(&"x".repeat(1024)));
    }

    #[test]
    fn refuses_every_entry_of_the_list() {
        let entries: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert_eq!(entries.len(), COMMON_LIST_LEN);
        assert_eq!(
            BLOCKLIST.words.len(),
            COMMON_LIST_LEN,
            "no duplicates, no blank lines"
        );
        for entry in entries {
            assert!(is_common(entry), "{entry}");
            assert!(is_common(&entry.to_uppercase()), "{entry}");
        }
    }

    #[test]
    fn list_is_the_head_of_zxcvbn_passwords_ranking() {
        let mut confirmed = 0;
        for (i, entry) in COMMON_PASSWORDS.lines().enumerate() {
            let entropy = zxcvbn::zxcvbn(entry, &[]);
            if let [only] = entropy.sequence()
                && let MatchPattern::Dictionary(d) = &only.pattern
                && in_passwords_dictionary(d)
                && d.matched_word == entry
            {
                assert_eq!(d.rank, i + 1, "{entry}");
                confirmed += 1;
            }
        }
        // Only entries zxcvbn explains some other way (see the module doc)
        // go unconfirmed.
        assert!(confirmed > COMMON_LIST_LEN - 200, "{confirmed}");
    }

    #[test]
    fn zxcvbn_path_recognises_its_passwords_dictionary_only() {
        assert!(variant_of_common("password", 8));
        assert!(variant_of_common("P@55w0rd", 8));
        // An English word that is not a common password.
        assert!(!variant_of_common("lighthouse", 10));
        assert!(!is_common("lighthouse"));
    }
}
