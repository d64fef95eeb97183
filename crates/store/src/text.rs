//! Text forms of the small enums (stored in the database and typed by admins), and the
//! conversions between Rust's unsigned sizes and the databases' signed 64-bit integers.

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
