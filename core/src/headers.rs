//! Request headers as hosts see them: plain text, the way Node's
//! `IncomingMessage.headers` has them.

use std::collections::BTreeMap;

/// Names in lower case; repeated headers joined with `", "`; values that are not
/// UTF-8 with their bad bytes replaced.
pub(crate) fn header_map(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = http::HeaderMap::new();
        headers.append("X-Tag", "a".parse().unwrap());
        headers.append("x-tag", "b".parse().unwrap());
        headers.insert("Host", "chat.example".parse().unwrap());
        let map = header_map(&headers);
        assert_eq!(map["x-tag"], "a, b");
        assert_eq!(map["host"], "chat.example");
    }
}
