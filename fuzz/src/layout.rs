//! Splitting a fuzz input into its header lines and the rest.

/// Takes the bytes up to the first LF off the front of `input` (LF dropped). An input with
/// no LF is all header: the rest is empty.
pub fn take_header<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    match input.iter().position(|b| *b == b'\n') {
        Some(lf) => {
            let header = &input[..lf];
            *input = &input[lf + 1..];
            header
        }
        None => std::mem::take(input),
    }
}
