//! When two names look the same to a reader. Open-mode names are unique, and
//! `system` is reserved, by how they look rather than by their code points: a
//! Cyrillic `ѕystem` or a fullwidth `ｓｙｓｔｅｍ` must not pass for the server's
//! notices, nor `Аda` (Cyrillic `А`) for an online `Ada`.

use unicode_normalization::UnicodeNormalization;
use unicode_security::skeleton;

use crate::protocol::SYSTEM_USER;

/// The compatibility form (NFKC) a display name is shown and stored in:
/// fullwidth, circled, ligature and other presentation variants become the
/// plain characters they stand for.
pub(crate) fn display_form(raw: &str) -> String {
    raw.nfkc().collect()
}

/// What two names share when a reader could take one for the other: the
/// Unicode confusable skeleton (UTS #39) of the name's NFKC form in lower case,
/// lowercased again because some prototypes are capitals (`0` becomes `O`).
/// Lowercasing first makes names that differ only by case one name, as they
/// always were. Names with the same key are the same name for uniqueness.
pub(crate) fn name_key(name: &str) -> String {
    let lower = display_form(name).to_lowercase();
    skeleton(&lower).flat_map(char::to_lowercase).collect()
}

/// Whether `name` looks like the reserved sender of server notices.
pub(crate) fn is_reserved(name: &str) -> bool {
    name_key(name) == name_key(SYSTEM_USER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_of_system_are_reserved() {
        for name in [
            "system",
            "System",
            "SYSTEM",
            "\u{0455}ystem",                                    // Cyrillic dze
            "\u{ff53}\u{ff59}\u{ff53}\u{ff54}\u{ff45}\u{ff4d}", // fullwidth
            "sy\u{200b}stem",                                   // zero-width space
            "\u{0405}YSTEM",                                    // Cyrillic capital dze
        ] {
            assert!(is_reserved(name), "{name:?}");
        }
        for name in ["systems", "sys tem", "Ada"] {
            assert!(!is_reserved(name), "{name:?}");
        }
    }

    #[test]
    fn look_alike_names_share_a_key() {
        assert_eq!(name_key("Ada"), name_key("ada"));
        assert_eq!(name_key("Ada"), name_key("\u{0410}da")); // Cyrillic A
        assert_eq!(name_key("paypal"), name_key("p\u{0430}yp\u{0430}l"));
        assert_eq!(name_key("LOOK ALIKE"), name_key("L\u{43e}\u{43e}k Alike"));
        assert_eq!(name_key("bob0"), name_key("BOBO"));
        assert_ne!(name_key("Ada"), name_key("Bob"));
    }

    /// tests/cluster/chat.test.js reserves numbered names by these keys.
    #[test]
    fn numbered_names_key_their_zeros_and_ones_as_letters() {
        assert_eq!(name_key("Ada-1000"), "ada-looo");
        assert_eq!(name_key("ada-23456789"), "ada-23456789");
    }

    #[test]
    fn display_form_is_nfkc() {
        assert_eq!(display_form("\u{ff21}\u{ff44}\u{ff41}"), "Ada");
        assert_eq!(display_form("Zo\u{0065}\u{0308}"), "Zo\u{00eb}");
    }
}
