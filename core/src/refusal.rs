//! The HTTP answer of a request refused before it reaches Socket.IO: a status and
//! a JSON body `{code, message}` with the code clients and operators look for.

use axum::body::Body;
use http::header;
use http::{Response, StatusCode};

/// `status` with `{"code": code, "message": message}`.
pub(crate) fn json_refusal(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "code": code, "message": message });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("static response parts are valid")
}
