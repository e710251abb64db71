//! The chat page and its assets (`examples/server/static/`), built into the binary
//! so that a copied binary serves them wherever it runs. `--static-dir` serves a
//! directory instead (for working on the page without rebuilding).
//!
//! Every answer carries an `ETag` (the file's SHA-256) and `Cache-Control:
//! no-cache`: browsers keep the files but ask each time, and get a bodiless 304
//! while the binary is the same, so a new build's page shows at once.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Page;

/// Answers a request for one of the embedded files (`/` is `index.html`).
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    let Some(file) = Page::get(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag(&file.metadata.sha256_hash());
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| matches!(tag.trim(), "*") || tag.trim() == etag)
        });
    let etag = HeaderValue::from_str(&etag).expect("hex digits are a valid header value");
    let caching = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, caching).into_response();
    }
    // Texts are UTF-8; saying so spares the browser a guess.
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    let content_type = HeaderValue::from_str(&content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    (caching, [(header::CONTENT_TYPE, content_type)], file.data).into_response()
}

/// A strong entity tag from a file's SHA-256.
fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether the page has `name` built in (used by the tests below).
#[cfg(test)]
fn has(name: &str) -> bool {
    Page::get(name).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_whole_page_is_built_in() {
        for name in ["index.html", "app.js", "style.css", "tutorial.html"] {
            assert!(super::has(name), "{name} missing");
        }
    }
}
