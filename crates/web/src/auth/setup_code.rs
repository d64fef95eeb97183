//! The one-time setup code: until the first admin exists, creating them (the setup page,
//! `POST /api/v1/setup`) needs a code that only someone who can read popdesk's log or
//! its data folder knows. Without it, whoever reaches the port first would own the
//! install.
//!
//! The code is random per serving process (12 base32 characters, 60 bits, shown as
//! `ABCD-EFGH-JKLM`), lives in that process's memory, and `popdesk serve` logs it and
//! writes it to `data_dir/setup-code` (0600) for an admin who missed the log; the file is
//! removed once an admin exists.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

/// The name of the file in the data folder that holds the code while setup is open.
pub const SETUP_CODE_FILE: &str = "setup-code";

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CODE_CHARS: usize = 12;

/// A setup code. Its Debug output hides it.
#[derive(Clone)]
pub struct SetupCode {
    /// The 12 characters, without dashes.
    chars: SecretString,
}

impl std::fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupCode([redacted])")
    }
}

impl SetupCode {
    /// A fresh random code.
    ///
    /// # Panics
    /// Only if the operating system cannot provide 12 random bytes (getrandom does not
    /// fail on the platforms popdesk runs on), where no unguessable code exists.
    pub fn random() -> SetupCode {
        let mut bytes = [0u8; CODE_CHARS];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        let chars: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect();
        SetupCode {
            chars: SecretString::from(chars),
        }
    }

    /// The code as shown to the admin: three groups of four, `ABCD-EFGH-JKLM`.
    pub fn display(&self) -> String {
        let chars = self.chars.expose_secret();
        let mut shown = String::with_capacity(CODE_CHARS + 2);
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        shown
    }

    /// Whether `typed` is this code, ignoring case, dashes and spaces. Takes the same
    /// time wherever the first difference is.
    pub fn matches(&self, typed: &str) -> bool {
        let typed: Vec<u8> = typed
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
            .map(|b| b.to_ascii_uppercase())
            .take(CODE_CHARS + 1)
            .collect();
        let expected = self.chars.expose_secret().as_bytes();
        if typed.len() != expected.len() {
            return false;
        }
        typed
            .iter()
            .zip(expected)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }

    /// Writes the code to `data_dir/setup-code`, readable by its owner only.
    pub fn write_file(&self, data_dir: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let path = data_dir.join(SETUP_CODE_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        writeln!(file, "{}", self.display())?;
        file.sync_all()
    }
}

/// Removes `data_dir/setup-code` (setup is over); a file that is not there is fine.
pub fn remove_file(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(SETUP_CODE_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_three_groups_of_four_base32_characters() {
        let code = SetupCode::random();
        let shown = code.display();
        let groups: Vec<&str> = shown.split('-').collect();
        assert_eq!(groups.len(), 3, "{shown}");
        for group in groups {
            assert_eq!(group.len(), 4);
            assert!(group.bytes().all(|b| ALPHABET.contains(&b)), "{shown}");
        }
        assert_ne!(SetupCode::random().display(), shown);
    }

    #[test]
    fn the_code_matches_however_it_is_typed_and_nothing_else_does() {
        let code = SetupCode::random();
        let shown = code.display();
        assert!(code.matches(&shown));
        assert!(code.matches(&shown.to_lowercase()));
        assert!(code.matches(&shown.replace('-', " ")));
        assert!(code.matches(&shown.replace('-', "")));
        assert!(!code.matches(""));
        assert!(!code.matches(&shown[..shown.len() - 1]));
        assert!(!code.matches(&format!("{shown}A")));
        let mut wrong = shown.clone().into_bytes();
        wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
        assert!(!code.matches(&String::from_utf8_lossy(&wrong)));
        assert!(!format!("{code:?}").contains(&shown));
    }
}
