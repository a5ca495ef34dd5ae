//! JSON string escaping for the two places that write JSON by hand because they are on every
//! request: the token claims ([`crate::token`]) and the log line ([`crate::log_format`]).
//!
//! The escapes are `JSON.stringify`'s, which serde_json shares: `"` and `\`, the short forms
//! `\b \f \n \r \t`, other control characters as `\u00xx`, everything else as is. The token
//! claims must match `generateToken` byte for byte, so this is the one definition of them.

/// Emits `value` escaped (without the surrounding quotes) as a series of `&str` pieces: runs of
/// the input that need no escaping, and escape sequences.
pub fn escape(value: &str, mut emit: impl FnMut(&str)) {
    const HEX: &str = "0123456789abcdef";
    let bytes = value.as_bytes();
    // Almost every string (ids, names, paths) needs no escape: one branch-free pass over its
    // bytes decides, instead of a decision per byte.
    if bytes.iter().fold(true, |plain, &b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    }) {
        emit(value);
        return;
    }
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every split point is an ASCII byte, so each run is whole UTF-8.
        emit(&value[start..i]);
        if escape.is_empty() {
            let (high, low) = (usize::from(byte >> 4), usize::from(byte & 0xf));
            emit("\\u00");
            emit(&HEX[high..=high]);
            emit(&HEX[low..=low]);
        } else {
            emit(escape);
        }
        start = i + 1;
    }
    emit(&value[start..]);
}

/// Appends `value` as a quoted JSON string.
pub fn push_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    escape(value, |piece| out.extend_from_slice(piece.as_bytes()));
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_like_serde_json_and_json_stringify() {
        for value in [
            "plain",
            "quote \" backslash \\ slash /",
            "\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}",
            "Zoë 😀 \u{2028}\u{2029}",
            "</script>",
            "",
            // Strings of nothing but characters that need escaping.
            "\u{1}\n",
            "\\\\",
            "\"",
        ] {
            let mut ours = Vec::new();
            push_string(&mut ours, value);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(value).unwrap(),
                "{value:?}"
            );
        }
    }
}
