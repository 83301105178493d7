//! Account Management > Password Policy (seed §3.4): minimum length, the
//! three optional strength rules, the optional lifetime, and the rules that
//! always apply (no common password, not containing the account name).
//!
//! [`PasswordPolicy::check`] reports every problem of a password at once, so
//! a user fixes them in one go. It does not hash, store or compare with old
//! passwords; deciding *when* a change is due (login, first use) is the
//! caller's business, with [`PasswordPolicy::is_expired`] as the clock rule.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::blocklist::{COMMON_LIST_LEN, is_common};
use crate::config::walk::{Obj, Walk};

/// The seed's minimum for "Min. Password Length", and its default.
pub const MIN_LENGTH_FLOOR: u16 = 8;

/// Largest "Min. Password Length" that can be set.
pub const MIN_LENGTH_CEILING: u16 = 128;

/// Longest password accepted, in characters. Far above the 128 that must
/// work (long passphrases, password managers) yet bounded, so hashing and
/// checking a password stay cheap.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Longest "Password Lifetime (day)": ten years.
pub const MAX_LIFETIME_DAYS: u16 = 3650;

/// Account names shorter than this are not looked for inside passwords:
/// two letters occur by chance in too many good passwords, and finding
/// them there tells an attacker nothing.
const MIN_ACCOUNT_NAME_CHARS: usize = 3;

const SECONDS_PER_DAY: i64 = 86_400;

/// Account Management > Password Policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PasswordPolicy {
    /// "Min. Password Length" in characters, 8–128 (default 8; the seed's
    /// hardening advice is 16).
    pub min_length: u16,
    /// "At least one digit (0-9)".
    pub require_digit: bool,
    /// "Mixed upper and lower case letters (A-Z, a-z)".
    pub require_mixed_case: bool,
    /// "At least one special character": anything that is not a letter, a
    /// digit or a space.
    pub require_special: bool,
    /// "Password Lifetime (day)", 1–3650; `None` = "Enable password
    /// lifetime" off. Once it has passed, login requires a new password
    /// before anything else.
    pub lifetime_days: Option<u16>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: MIN_LENGTH_FLOOR,
            require_digit: false,
            require_mixed_case: false,
            require_special: false,
            lifetime_days: None,
        }
    }
}

impl PasswordPolicy {
    /// Check a new password for `account_name`; every problem is listed.
    ///
    /// Besides the configured rules this always refuses control characters,
    /// passwords longer than [`MAX_PASSWORD_CHARS`], the 10,000 most common
    /// passwords (see [`is_common`]) and passwords containing the account
    /// name (ignoring case). Lengths are counted in characters (Unicode
    /// scalar values), not bytes. The blocklist lookup can take a few
    /// milliseconds; async callers may prefer `spawn_blocking`.
    pub fn check(&self, account_name: &str, password: &str) -> Result<(), PasswordRejected> {
        let mut problems = Vec::new();
        let chars = password.chars().count();
        // The fields are public like the rest of the configuration model, so
        // a policy built in code could skip the reader's range check; the
        // seed's minimum holds anyway.
        let min_chars = self.min_length.max(MIN_LENGTH_FLOOR);
        if chars < usize::from(min_chars) {
            problems.push(PasswordProblem::TooShort { min_chars });
        }
        if chars > MAX_PASSWORD_CHARS {
            problems.push(PasswordProblem::TooLong {
                max_chars: MAX_PASSWORD_CHARS,
            });
        }
        if password.chars().any(char::is_control) {
            problems.push(PasswordProblem::ControlCharacter);
        }
        if self.require_digit && !password.chars().any(char::is_numeric) {
            problems.push(PasswordProblem::MissingDigit);
        }
        if self.require_mixed_case
            && !(password.chars().any(char::is_uppercase)
                && password.chars().any(char::is_lowercase))
        {
            problems.push(PasswordProblem::MissingMixedCase);
        }
        if self.require_special && !password.chars().any(is_special) {
            problems.push(PasswordProblem::MissingSpecial);
        }
        if contains_account_name(account_name, password) {
            problems.push(PasswordProblem::ContainsAccountName);
        }
        if is_common(password) {
            problems.push(PasswordProblem::Common);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PasswordRejected { problems })
        }
    }

    /// Whether a password last changed at `changed_at_unix_s` has outlived
    /// the lifetime at `now_unix_s`. Never with the lifetime off.
    pub fn is_expired(&self, changed_at_unix_s: i64, now_unix_s: i64) -> bool {
        self.expires_at(changed_at_unix_s)
            .is_some_and(|expiry| now_unix_s >= expiry)
    }

    /// When a password last changed at `changed_at_unix_s` expires (Unix
    /// seconds), for showing next to "Last Updated Date"; `None` with the
    /// lifetime off.
    pub fn expires_at(&self, changed_at_unix_s: i64) -> Option<i64> {
        // A change time from a clock that later went back lies in the
        // future; the password then simply lives longer, which is safer
        // than forcing every account to change at once.
        self.lifetime_days
            .map(|days| changed_at_unix_s.saturating_add(i64::from(days) * SECONDS_PER_DAY))
    }
}

/// A special character for "At least one special character": neither a
/// letter, a digit nor white space. This covers the seed's list
/// ``~!@#$%^&*_-+=`|\(){}[]:;'"<>,.?/`` and any other symbol.
fn is_special(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
}

fn contains_account_name(account_name: &str, password: &str) -> bool {
    let name = account_name.trim();
    // See MIN_ACCOUNT_NAME_CHARS for why short names are skipped.
    name.chars().count() >= MIN_ACCOUNT_NAME_CHARS
        && password.to_lowercase().contains(&name.to_lowercase())
}

/// One reason a password was refused. Its text completes "The password …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer characters than the policy's minimum length.
    TooShort {
        /// The minimum in force.
        min_chars: u16,
    },
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    TooLong {
        /// [`MAX_PASSWORD_CHARS`].
        max_chars: usize,
    },
    /// A control character (tab, newline, escape …): it cannot be typed the
    /// same way at every prompt.
    ControlCharacter,
    /// The digit rule is on and there is no digit.
    MissingDigit,
    /// The mixed-case rule is on and upper or lower case letters are missing.
    MissingMixedCase,
    /// The special-character rule is on and there is none.
    MissingSpecial,
    /// The account name appears in the password (ignoring case).
    ContainsAccountName,
    /// One of the most common passwords, or a simple variant of one.
    Common,
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordProblem::TooShort { min_chars } => {
                write!(f, "is shorter than {min_chars} characters")
            }
            PasswordProblem::TooLong { max_chars } => {
                write!(f, "is longer than {max_chars} characters")
            }
            PasswordProblem::ControlCharacter => {
                f.write_str("contains a control character such as a tab or a line break")
            }
            PasswordProblem::MissingDigit => f.write_str("has no digit (0-9)"),
            PasswordProblem::MissingMixedCase => {
                f.write_str("does not mix upper and lower case letters")
            }
            PasswordProblem::MissingSpecial => {
                f.write_str("has no special character such as ~!@#$%^&*_-+=")
            }
            PasswordProblem::ContainsAccountName => f.write_str("contains the account name"),
            PasswordProblem::Common => write!(
                f,
                "is one of the {} most common passwords or a simple variant of one",
                thousands(COMMON_LIST_LEN)
            ),
        }
    }
}

/// "10000" → "10,000", for the message only.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A password the policy refused, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRejected {
    /// Never empty.
    pub problems: Vec<PasswordProblem>,
}

impl fmt::Display for PasswordRejected {
    /// One sentence: "the password is shorter than 16 characters and
    /// contains the account name; choose another password".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the password ")?;
        let last = self.problems.len().saturating_sub(1);
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str(if i == last { " and " } else { ", " })?;
            }
            write!(f, "{problem}")?;
        }
        f.write_str("; choose another password")
    }
}

impl std::error::Error for PasswordRejected {}

/// Read the `security.password_policy` section.
pub(crate) fn read_policy(w: &mut Walk, path: String, value: Option<&Value>) -> PasswordPolicy {
    let d = PasswordPolicy::default();
    let mut o = Obj::new(w, path, value);
    let policy = PasswordPolicy {
        min_length: o.int(
            w,
            "min_length",
            d.min_length,
            MIN_LENGTH_FLOOR..=MIN_LENGTH_CEILING,
        ),
        require_digit: o.bool(w, "require_digit", d.require_digit),
        require_mixed_case: o.bool(w, "require_mixed_case", d.require_mixed_case),
        require_special: o.bool(w, "require_special", d.require_special),
        lifetime_days: o.opt_int(w, "lifetime_days", 1..=MAX_LIFETIME_DAYS),
    };
    o.finish(w);
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPHRASE_64: &str = "plankton ferry quietly orbits the crooked lighthouse at dawn!!!!";

    fn problems(policy: &PasswordPolicy, account: &str, password: &str) -> Vec<PasswordProblem> {
        match policy.check(account, password) {
            Ok(()) => Vec::new(),
            Err(rejected) => rejected.problems,
        }
    }

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 16,
            require_digit: true,
            require_mixed_case: true,
            require_special: true,
            lifetime_days: Some(90),
        }
    }

    fn read(v: &Value) -> (PasswordPolicy, Vec<String>) {
        let mut w = Walk::default();
        let p = read_policy(&mut w, "security.password_policy".into(), Some(v));
        (p, w.errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn refuses_password_shorter_than_minimum() {
        let policy = PasswordPolicy {
            min_length: 16,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            problems(&policy, "operator", "fjord-walnut-7"),
            vec![PasswordProblem::TooShort { min_chars: 16 }]
        );
        assert_eq!(problems(&policy, "operator", "fjord-walnut-77x"), vec![]);
    }

    #[test]
    fn default_minimum_is_eight() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            problems(&policy, "operator", "fj0rd-w"),
            vec![PasswordProblem::TooShort { min_chars: 8 }]
        );
        assert_eq!(problems(&policy, "operator", "fj0rd-wa"), vec![]);
    }

    #[test]
    fn minimum_below_the_seed_floor_still_requires_eight() {
        let policy = PasswordPolicy {
            min_length: 2,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            problems(&policy, "operator", "x7q"),
            vec![PasswordProblem::TooShort { min_chars: 8 }]
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        let policy = PasswordPolicy::default();
        // Seven two-byte characters: 14 bytes but too short.
        assert_eq!(
            problems(&policy, "operator", "ßüéñøåç"),
            vec![PasswordProblem::TooShort { min_chars: 8 }]
        );
        assert_eq!(problems(&policy, "operator", "ßüéñøåçæ"), vec![]);
    }

    #[test]
    fn accepts_64_character_passphrase_under_strict_policy() {
        let phrase = "Plankton ferry quietly orbits the crooked lighthouse at 6 dawn!!";
        assert_eq!(phrase.chars().count(), 64);
        assert_eq!(problems(&strict(), "admin", phrase), vec![]);
        assert_eq!(PASSPHRASE_64.chars().count(), 64);
        assert_eq!(
            problems(&PasswordPolicy::default(), "admin", PASSPHRASE_64),
            vec![]
        );
    }

    #[test]
    fn accepts_128_and_1024_characters_and_refuses_1025() {
        let policy = PasswordPolicy {
            min_length: MIN_LENGTH_CEILING,
            ..PasswordPolicy::default()
        };
        let long = |n: usize| PASSPHRASE_64.chars().cycle().take(n).collect::<String>();
        assert_eq!(problems(&policy, "admin", &long(128)), vec![]);
        assert_eq!(problems(&policy, "admin", &long(1024)), vec![]);
        assert_eq!(
            problems(&policy, "admin", &long(1025)),
            vec![PasswordProblem::TooLong { max_chars: 1024 }]
        );
    }

    #[test]
    fn refuses_common_passwords_under_any_policy() {
        let policy = PasswordPolicy::default();
        for common in [
            "password", "iloveyou", "11111111", "P@ssw0rd", "baseball", "Sunshine",
        ] {
            assert_eq!(
                problems(&policy, "admin", common),
                vec![PasswordProblem::Common],
                "{common}"
            );
        }
    }

    #[test]
    fn refuses_password_containing_account_name_ignoring_case() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            problems(&policy, "Operator", "my-OPERATOR-key-42"),
            vec![PasswordProblem::ContainsAccountName]
        );
        assert_eq!(
            problems(&policy, "jürgen", "xJÜRGENx-fjord-2"),
            vec![PasswordProblem::ContainsAccountName]
        );
    }

    #[test]
    fn skips_account_name_rule_for_names_under_three_characters() {
        let policy = PasswordPolicy::default();
        assert_eq!(problems(&policy, "al", "totally-alpine-fjord"), vec![]);
        assert_eq!(
            problems(&policy, "alp", "totally-alpine-fjord"),
            vec![PasswordProblem::ContainsAccountName]
        );
    }

    #[test]
    fn digit_rule_needs_a_digit() {
        let policy = PasswordPolicy {
            require_digit: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            problems(&policy, "admin", "fjord-walnut"),
            vec![PasswordProblem::MissingDigit]
        );
        assert_eq!(problems(&policy, "admin", "fjord-walnut3"), vec![]);
    }

    #[test]
    fn mixed_case_rule_needs_both_cases() {
        let policy = PasswordPolicy {
            require_mixed_case: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            problems(&policy, "admin", "fjord-walnut"),
            vec![PasswordProblem::MissingMixedCase]
        );
        assert_eq!(
            problems(&policy, "admin", "FJORD-WALNUT"),
            vec![PasswordProblem::MissingMixedCase]
        );
        assert_eq!(problems(&policy, "admin", "Fjord-walnut"), vec![]);
    }

    #[test]
    fn special_rule_needs_a_symbol_and_a_space_is_not_one() {
        let policy = PasswordPolicy {
            require_special: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            problems(&policy, "admin", "fjord walnut 3"),
            vec![PasswordProblem::MissingSpecial]
        );
        for symbol in "~!@#$%^&*_-+=`|\\(){}[]:;'\"<>,.?/".chars() {
            let password = format!("fjordwalnut{symbol}");
            assert_eq!(problems(&policy, "admin", &password), vec![], "{symbol}");
        }
    }

    #[test]
    fn refuses_control_characters() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            problems(&policy, "admin", "fjord\twalnut"),
            vec![PasswordProblem::ControlCharacter]
        );
        assert_eq!(
            problems(&policy, "admin", "fjord walnut\n"),
            vec![PasswordProblem::ControlCharacter]
        );
    }

    #[test]
    fn reports_every_problem_together() {
        let rejected = strict().check("admin", "admin\u{7}").expect_err("refused");
        assert_eq!(
            rejected.problems,
            vec![
                PasswordProblem::TooShort { min_chars: 16 },
                PasswordProblem::ControlCharacter,
                PasswordProblem::MissingDigit,
                PasswordProblem::MissingMixedCase,
                PasswordProblem::MissingSpecial,
                PasswordProblem::ContainsAccountName,
            ]
        );
        let rejected = strict().check("nobody", "password").expect_err("refused");
        assert_eq!(rejected.problems.len(), 5);
        assert_eq!(rejected.problems.last(), Some(&PasswordProblem::Common));
    }

    #[test]
    fn rejection_reads_as_one_sentence() {
        let rejected = PasswordRejected {
            problems: vec![
                PasswordProblem::TooShort { min_chars: 16 },
                PasswordProblem::ContainsAccountName,
                PasswordProblem::Common,
            ],
        };
        assert_eq!(
            rejected.to_string(),
            "the password is shorter than 16 characters, contains the account name and is one \
             of the 10,000 most common passwords or a simple variant of one; choose another password"
        );
        let one = PasswordRejected {
            problems: vec![PasswordProblem::MissingDigit],
        };
        assert_eq!(
            one.to_string(),
            "the password has no digit (0-9); choose another password"
        );
    }

    #[test]
    fn lifetime_expires_after_the_configured_days() {
        let policy = PasswordPolicy {
            lifetime_days: Some(90),
            ..PasswordPolicy::default()
        };
        let changed = 1_700_000_000;
        let lifetime = 90 * 86_400;
        assert!(!policy.is_expired(changed, changed));
        assert!(!policy.is_expired(changed, changed + lifetime - 1));
        assert!(policy.is_expired(changed, changed + lifetime));
        assert_eq!(policy.expires_at(changed), Some(changed + lifetime));
        // A change time in the future (clock went back) is not expired.
        assert!(!policy.is_expired(changed + 1000, changed));
        assert!(!policy.is_expired(i64::MAX - 10, i64::MAX - 5));
    }

    #[test]
    fn lifetime_off_never_expires() {
        let policy = PasswordPolicy::default();
        assert!(!policy.is_expired(0, i64::MAX));
        assert_eq!(policy.expires_at(0), None);
    }

    #[test]
    fn reader_defaults_follow_the_seed() {
        let (p, errors) = read(&serde_json::json!({}));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(p, PasswordPolicy::default());
        assert_eq!(p.min_length, 8);
        assert_eq!(p.lifetime_days, None);
        let mut w = Walk::default();
        assert_eq!(
            read_policy(&mut w, "security.password_policy".into(), None),
            PasswordPolicy::default()
        );
        assert!(w.errors.is_empty());
    }

    #[test]
    fn reader_round_trips() {
        for policy in [PasswordPolicy::default(), strict()] {
            let value = serde_json::to_value(&policy).expect("json");
            let (back, errors) = read(&value);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(back, policy);
        }
        let value = serde_json::to_value(strict()).expect("json");
        assert_eq!(
            value,
            serde_json::json!({
                "min_length": 16,
                "require_digit": true,
                "require_mixed_case": true,
                "require_special": true,
                "lifetime_days": 90,
            })
        );
    }

    #[test]
    fn reader_reports_every_bad_field() {
        let (p, errors) = read(&serde_json::json!({
            "min_length": 4,
            "require_digit": "yes",
            "lifetime_days": 0,
            "max_length": 64,
        }));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].starts_with("security.password_policy.min_length"),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("security.password_policy.require_digit"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("security.password_policy.lifetime_days"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("security.password_policy.max_length"))
        );
        assert_eq!(p, PasswordPolicy::default());

        let (_, errors) = read(&serde_json::json!({"min_length": 129, "lifetime_days": 3651}));
        assert_eq!(errors.len(), 2, "{errors:?}");
        let (_, errors) = read(&serde_json::json!("strict"));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn thousands_separates_groups_of_three() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
