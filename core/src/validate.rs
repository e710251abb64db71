//! Checks on user-supplied names, room names and texts.

use crate::config::Limits;
use crate::lookalike;
use crate::protocol::{ChatError, ErrorCode, SYSTEM_USER};

/// Punctuation allowed in display names besides letters and digits.
const NAME_PUNCTUATION: &[char] = &[' ', '_', '-', '.', '\'', '@'];
/// Punctuation allowed in room names besides letters and digits.
const ROOM_PUNCTUATION: &[char] = &[' ', '_', '-', '.', '#', ':', '+'];

/// Longest user id a request may name, in bytes: longer than any id the
/// server gives (a display name, or a token's `sub` of at most 128 bytes).
const MAX_USER_ID_BYTES: usize = 256;

/// A user id named by a request (`private {to}`, `history {with}`): any id the
/// server could have given, nothing longer.
pub(crate) fn user_id(raw: &str) -> Result<&str, ChatError> {
    if raw.is_empty() || raw.len() > MAX_USER_ID_BYTES {
        return Err(ChatError::new(
            ErrorCode::InvalidRecipient,
            format!("a user id has 1 to {MAX_USER_ID_BYTES} bytes"),
        ));
    }
    Ok(raw)
}

/// Brings a display name to its NFKC form, trims it, collapses runs of spaces,
/// and checks its length and characters.
pub(crate) fn name(raw: &str, limits: &Limits) -> Result<String, ChatError> {
    let name = collapse_spaces(lookalike::display_form(raw).trim());
    let name = name.as_str();
    let invalid = |why: String| Err(ChatError::new(ErrorCode::InvalidName, why));
    let chars = name.chars().count();
    if chars == 0 {
        return invalid("a name cannot be empty".into());
    }
    if chars > limits.max_name_chars {
        return invalid(format!(
            "a name has at most {} characters",
            limits.max_name_chars
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_alphanumeric() && !NAME_PUNCTUATION.contains(c))
    {
        return invalid(format!(
            "{c:?} is not allowed in a name (letters, digits, space and _ - . ' @ are)"
        ));
    }
    if !name.chars().any(char::is_alphanumeric) {
        return invalid("a name needs at least one letter or digit".into());
    }
    if lookalike::is_reserved(name) {
        return invalid(format!(
            "{SYSTEM_USER:?} and names that look like it are reserved"
        ));
    }
    Ok(name.to_string())
}

/// Trims a room name, collapses runs of spaces, and checks its length and
/// characters.
pub(crate) fn room(raw: &str, limits: &Limits) -> Result<String, ChatError> {
    let room = collapse_spaces(raw.trim());
    let room = room.as_str();
    let invalid = |why: String| Err(ChatError::new(ErrorCode::InvalidRoom, why));
    let chars = room.chars().count();
    if chars == 0 {
        return invalid("a room name cannot be empty".into());
    }
    if chars > limits.max_room_chars {
        return invalid(format!(
            "a room name has at most {} characters",
            limits.max_room_chars
        ));
    }
    if let Some(c) = room
        .chars()
        .find(|c| !c.is_alphanumeric() && !ROOM_PUNCTUATION.contains(c))
    {
        return invalid(format!(
            "{c:?} is not allowed in a room name (letters, digits, space and _ - . # : + are)"
        ));
    }
    if !room.chars().any(char::is_alphanumeric) {
        return invalid("a room name needs at least one letter or digit".into());
    }
    Ok(room.to_string())
}

/// Checks a message text: not blank, not too long, no hidden controls (see
/// [`is_hidden_control`]). The text is kept as sent.
pub(crate) fn text(raw: String, limits: &Limits) -> Result<String, ChatError> {
    if raw.trim().is_empty() {
        return Err(ChatError::new(
            ErrorCode::EmptyText,
            "a message cannot be empty",
        ));
    }
    if let Some(c) = raw.chars().find(|c| is_hidden_control(*c)) {
        return Err(ChatError::new(
            ErrorCode::InvalidText,
            format!(
                "{c:?} is not allowed in a message (control characters other than tab and \
                 line breaks, and bidirectional embeddings, overrides and isolates, are not)"
            ),
        ));
    }
    // Counting stops early so an oversized text costs no more than the limit.
    if raw.chars().nth(limits.max_text_chars).is_some() {
        return Err(ChatError::new(
            ErrorCode::TextTooLong,
            format!("a message has at most {} characters", limits.max_text_chars),
        ));
    }
    Ok(raw)
}

/// Characters that act on the text around them without being seen: control
/// characters other than tab, line feed and carriage return (NUL would cut the
/// text short for C hosts), and the bidirectional embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069) that make text read differently
/// from how it is stored. The marks U+200E, U+200F and U+061C stay allowed:
/// they only nudge neutral characters, which right-to-left writing needs.
pub(crate) fn is_hidden_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_bidi_control(c)
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Runs of spaces become one, so "a  b" and "a b" cannot pose as different names.
fn collapse_spaces(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut previous_space = false;
    for c in value.chars() {
        if c == ' ' {
            if !previous_space {
                out.push(c);
            }
            previous_space = true;
        } else {
            out.push(c);
            previous_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn names() {
        assert_eq!(name("  Zoë  O'Neil ", &limits()).unwrap(), "Zoë O'Neil");
        assert_eq!(name("李小龙", &limits()).unwrap(), "李小龙");
        assert_eq!(name("\u{ff21}\u{ff44}\u{ff41}", &limits()).unwrap(), "Ada");
        let spaced = format!("Ada{}Lovelace", " ".repeat(40));
        assert_eq!(name(&spaced, &limits()).unwrap(), "Ada Lovelace");
        for bad in [
            "",
            "   ",
            "<script>",
            "a\u{0}b",
            "---",
            "System",
            "\u{455}ystem",
            "\u{ff53}\u{ff59}\u{ff53}\u{ff54}\u{ff45}\u{ff4d}",
            "a\u{202e}b",
            &"x".repeat(33),
        ] {
            assert_eq!(
                name(bad, &limits()).unwrap_err().code,
                ErrorCode::InvalidName,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rooms() {
        assert_eq!(room(" general ", &limits()).unwrap(), "general");
        let spaced = format!("a{}b", " ".repeat(70));
        assert_eq!(room(&spaced, &limits()).unwrap(), "a b");
        assert_eq!(room("Room #1", &limits()).unwrap(), "Room #1");
        for bad in ["", "a/b", "<b>", "..", &"r".repeat(65)] {
            assert_eq!(
                room(bad, &limits()).unwrap_err().code,
                ErrorCode::InvalidRoom,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn texts() {
        assert_eq!(text("hi <b>".into(), &limits()).unwrap(), "hi <b>");
        assert_eq!(
            text(" \n ".into(), &limits()).unwrap_err().code,
            ErrorCode::EmptyText
        );
        assert!(text("é".repeat(2000), &limits()).is_ok());
        assert_eq!(
            text("line\r\n\tnext \u{200f}".into(), &limits()).unwrap(),
            "line\r\n\tnext \u{200f}"
        );
        for bad in [
            "a\0b",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
            "x\u{202e}y",
            "\u{2066}z",
        ] {
            assert_eq!(
                text(bad.into(), &limits()).unwrap_err().code,
                ErrorCode::InvalidText,
                "{bad:?}"
            );
        }
        assert_eq!(
            text("é".repeat(2001), &limits()).unwrap_err().code,
            ErrorCode::TextTooLong
        );
    }
}
