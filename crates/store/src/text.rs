//! Text forms of the small enums (stored in the database and typed by admins), the
//! conversions between Rust's unsigned sizes and the databases' signed 64-bit integers,
//! and [`db_text`], the one way text from mail reaches a text column.

use crate::StoreError;

/// Declares `as_str`, `Display` and `FromStr` for a fieldless enum from one table of
/// (variant, text) pairs, so the stored form and the typed form cannot drift apart.
macro_rules! text_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value's text form, in the order they are declared.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The text form, as stored in the database and accepted on the command line.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err($crate::StoreError::Parse {
                        what: $what,
                        value: s.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl $ty {
            /// Reads the stored text form; an unknown one means a newer schema wrote it.
            #[allow(dead_code)]
            pub(crate) fn from_stored(s: &str) -> Result<Self, $crate::StoreError> {
                s.parse().map_err(|_| $crate::StoreError::UnknownValue {
                    what: $what,
                    value: s.to_string(),
                })
            }
        }
    };
}
pub(crate) use text_enum;

/// A u64 size or count as the databases' BIGINT.
pub(crate) fn to_db(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { field, value })
}

/// A BIGINT read back as u64. Negative values are never written; one read here means the
/// row was edited by hand, and zero is the least surprising reading of it.
pub(crate) fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// One column of a row, with the error a caller can read.
pub(crate) fn column<'r, T>(row: &'r sqlx::any::AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    sqlx::Row::try_get(row, name).map_err(StoreError::db("read a stored row"))
}

/// Text as the database stores it: every U+0000 replaced by U+FFFD.
///
/// PostgreSQL refuses U+0000 in a text value (`invalid byte sequence for encoding
/// "UTF8": 0x00`, raised for a bound parameter, a lookup as much as an insert) while
/// SQLite takes it, so without this one message's decoded text (a `=00` in
/// quoted-printable, a UTF-16 part read as another charset, a NUL in a header) is fine on
/// one backend and an error on the other. Every other `&str` is valid UTF-8 and stored
/// as it is by both.
///
/// Replaced rather than removed: removing joins the text on either side, so two
/// different Message-IDs could become one (and dedupe on it), and nothing would show
/// that the mail held something odd there. U+FFFD is the mark the charset decoders
/// already leave for bytes they could not read. It happens here, before any backend is
/// involved, so SQLite and PostgreSQL store the same text; the raw bytes in the blob
/// store are never touched, so reprocessing starts from the original.
///
/// Used at the store's edge for every text column written from mail and for every
/// lookup by such a value, so a lookup finds what was stored. It returns an owned
/// `String` because sqlx's `Any` driver copies every bound `&str` into one anyway; a
/// `String` is moved in, so this costs no more than binding the `&str` did.
pub(crate) fn db_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// [`db_text`] of an optional value.
pub(crate) fn db_text_opt(text: Option<&str>) -> Option<String> {
    text.map(db_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(db_text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn text_without_nul_is_unchanged() {
        assert_eq!(db_text("plain text, ünïcödé"), "plain text, ünïcödé");
    }

    #[test]
    fn different_ids_stay_different() {
        assert_ne!(db_text("a\0b"), db_text("ab"));
    }
}
