//! The HTTP face of the chat: everything under `/socket.io/` (the Socket.IO
//! transport, the client script, the origin check and CORS); other requests go
//! to the host's own service.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::allowed_hosts::HostPolicy;
use crate::goodbye::GoodbyeTracker;
use crate::handshake_limit::HandshakeLimit;
use crate::plain_ws::PlainSockets;
use crate::refusal::json_refusal;

/// Where Socket.IO lives, as in the Node server.
pub(crate) const SOCKET_IO_PATH: &str = "/socket.io";

/// The official `socket.io-client` browser bundle (see core/assets/README.md).
const CLIENT_SCRIPT: &[u8] = include_bytes!("../assets/socket.io.min.js");
const CLIENT_SCRIPT_ESM: &[u8] = include_bytes!("../assets/socket.io.esm.min.js");

type SocketIoService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A tower [`Layer`] that puts the chat in front of an existing service, the way
/// socketioxide's layer does: requests under `/socket.io/` are the chat's, all
/// others reach the wrapped service untouched.
///
/// Made by [`ChatBuilder::into_layer`](crate::ChatBuilder::into_layer).
#[derive(Clone)]
pub struct ChatLayer {
    socket_io: SocketIoService,
    hosts: Arc<HostPolicy>,
    origins: Arc<OriginPolicy>,
    goodbye: Arc<GoodbyeTracker>,
    plain: Arc<PlainSockets>,
    handshakes: Arc<HandshakeLimit>,
}

impl ChatLayer {
    pub(crate) fn new<S>(
        socket_io: S,
        cors_origins: &[String],
        allowed_hosts: &[String],
        goodbye: Arc<GoodbyeTracker>,
        plain: Arc<PlainSockets>,
        handshakes: HandshakeLimit,
    ) -> Self
    where
        S: Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        let origins = Arc::new(OriginPolicy::new(cors_origins));
        let socket_io = origins
            .cors_layer()
            .layer(socket_io.map_response(IntoResponse::into_response));
        Self {
            socket_io: BoxCloneSyncService::new(socket_io),
            hosts: Arc::new(HostPolicy::new(allowed_hosts)),
            origins,
            goodbye,
            plain,
            handshakes: Arc::new(handshakes),
        }
    }
}

impl<S> Layer<S> for ChatLayer {
    type Service = ChatService<S>;

    fn layer(&self, inner: S) -> ChatService<S> {
        ChatService {
            inner,
            socket_io: self.socket_io.clone(),
            hosts: self.hosts.clone(),
            origins: self.origins.clone(),
            goodbye: self.goodbye.clone(),
            plain: self.plain.clone(),
            handshakes: self.handshakes.clone(),
        }
    }
}

/// The service made by [`ChatLayer`].
#[derive(Clone)]
pub struct ChatService<S> {
    inner: S,
    socket_io: SocketIoService,
    hosts: Arc<HostPolicy>,
    origins: Arc<OriginPolicy>,
    goodbye: Arc<GoodbyeTracker>,
    plain: Arc<PlainSockets>,
    handshakes: Arc<HandshakeLimit>,
}

impl<S> Service<Request<Body>> for ChatService<S>
where
    S: Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both services are driven with `oneshot`, which waits for readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if self.plain.claims(&request) {
            // Browsers apply no CORS to WebSocket upgrades: the host and origin
            // checks keep other web sites out.
            let refusal = self
                .hosts
                .refuse(&request)
                .or_else(|| self.origins.refuse(&request));
            let response = match refusal {
                Some(refusal) => refusal,
                None => self.plain.upgrade(request),
            };
            return Box::pin(async move { Ok(response) });
        }
        let path = request.uri().path();
        let ours = path == SOCKET_IO_PATH || path.starts_with("/socket.io/");
        if !ours {
            let inner = self.inner.clone();
            return Box::pin(async move {
                let response = inner.oneshot(request).await?;
                Ok(response.into_response())
            });
        }
        if let Some(refusal) = self
            .hosts
            .refuse(&request)
            .or_else(|| self.origins.refuse(&request))
        {
            return Box::pin(async move { Ok(refusal) });
        }
        if let Some(script) = client_script(&request) {
            return Box::pin(async move { Ok(script) });
        }
        if let Some(refusal) = self.handshakes.refuse(&mut request) {
            return Box::pin(async move { Ok(refusal) });
        }
        let poll = polling_sid(&request);
        let response = self
            .socket_io
            .clone()
            .oneshot(detach_from_read_buffer(request));
        match poll {
            // Once a poll is answered, its client has what was queued for it:
            // at stop, that is the goodbye.
            Some(sid) => {
                let goodbye = self.goodbye.clone();
                Box::pin(async move {
                    let answered = response.await;
                    goodbye.polled(&sid);
                    answered
                })
            }
            None => Box::pin(response),
        }
    }
}

/// The session id of a long-polling `GET`.
fn polling_sid(request: &Request<Body>) -> Option<String> {
    if request.method() != Method::GET {
        return None;
    }
    let query = request.uri().query()?;
    let mut polling = false;
    let mut sid = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "transport" => polling = value == "polling",
            "sid" => sid = Some(value.into_owned()),
            _ => {}
        }
    }
    sid.filter(|_| polling)
}

/// The same request, with its URI and headers in allocations of their own.
///
/// The HTTP parser hands out the URI and header values as slices of its read
/// buffer (8 KiB or more). Engine.IO keeps the request head of every connection for
/// its whole life, which would keep that buffer too: copying the few bytes that
/// matter frees it as soon as the connection has been upgraded.
fn detach_from_read_buffer(request: Request<Body>) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
    // The router's copy of the URI shares the same buffer.
    parts.extensions.remove::<axum::extract::OriginalUri>();
    let headers = std::mem::take(&mut parts.headers);
    parts.headers.reserve(headers.len());
    let mut last_name = None;
    for (name, value) in headers {
        // `HeaderMap::into_iter` gives the name once per run of values.
        let name = match name {
            Some(name) => {
                last_name = Some(name.clone());
                name
            }
            None => match &last_name {
                Some(name) => name.clone(),
                None => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            parts.headers.append(name, value);
        }
    }
    Request::from_parts(parts, body)
}

/// Which browser origins may talk to the chat.
struct OriginPolicy {
    any: bool,
    allowed: Vec<String>,
}

impl OriginPolicy {
    fn new(cors_origins: &[String]) -> Self {
        let any = cors_origins.iter().any(|o| o == "*");
        if any {
            tracing::warn!("cors_origins contains \"*\": every web site may connect to this chat");
        }
        Self {
            any,
            allowed: cors_origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    fn cors_layer(&self) -> CorsLayer {
        let origin = if self.any {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                self.allowed
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
    }

    /// A 403 for a browser request from an origin that is neither the page's own
    /// nor allowed. WebSocket upgrades are covered too: browsers do not apply CORS
    /// to them, so without this any web site could open a chat connection.
    fn refuse(&self, request: &Request<Body>) -> Option<Response<Body>> {
        let origin = request.headers().get(header::ORIGIN)?.to_str().ok();
        let allowed = match origin {
            None => false,
            Some(origin) => {
                let origin = origin.to_ascii_lowercase();
                self.any || self.allowed.contains(&origin) || same_origin(&origin, request)
            }
        };
        if allowed {
            return None;
        }
        Some(json_refusal(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not use the chat; add it to cors_origins",
        ))
    }
}

/// The Origin names the host the request was sent to (the page and the chat share
/// an origin). The scheme is not compared: behind a TLS-terminating proxy the
/// server sees plain HTTP.
fn same_origin(origin: &str, request: &Request<Body>) -> bool {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
    else {
        return false;
    };
    let origin_authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_authority.eq_ignore_ascii_case(host)
        || default_port(origin)
            .is_some_and(|port| format!("{origin_authority}:{port}").eq_ignore_ascii_case(host))
}

fn default_port(origin: &str) -> Option<u16> {
    if origin.starts_with("https://") {
        Some(443)
    } else if origin.starts_with("http://") {
        Some(80)
    } else {
        None
    }
}

/// `GET /socket.io/socket.io.js` (and `.min.js`, `.esm.min.js`), like the Node server.
fn client_script(request: &Request<Body>) -> Option<Response<Body>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let body = match request.uri().path() {
        "/socket.io/socket.io.js" | "/socket.io/socket.io.min.js" => CLIENT_SCRIPT,
        "/socket.io/socket.io.esm.min.js" => CLIENT_SCRIPT_ESM,
        _ => return None,
    };
    let etag = script_etag(body);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag.as_bytes());
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "public, max-age=0, must-revalidate");
    let response = if fresh {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .header(
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            )
            .header(header::CONTENT_LENGTH, body.len())
            .body(if request.method() == Method::HEAD {
                Body::empty()
            } else {
                Body::from(body)
            })
    };
    Some(response.expect("static response parts are valid"))
}

/// A content hash (FNV-1a), computed once per bundle.
fn script_etag(body: &'static [u8]) -> &'static str {
    static CLASSIC: OnceLock<String> = OnceLock::new();
    static ESM: OnceLock<String> = OnceLock::new();
    let cell = if std::ptr::eq(body, CLIENT_SCRIPT) {
        &CLASSIC
    } else {
        &ESM
    };
    cell.get_or_init(|| {
        let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("\"{hash:016x}\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, origin: Option<&str>, host: &str) -> Request<Body> {
        let mut builder = Request::get(path).header(header::HOST, host);
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn origins() {
        let policy = OriginPolicy::new(&["https://app.example.com".into()]);
        let check = |origin: Option<&str>, host: &str| {
            policy
                .refuse(&request("/socket.io/", origin, host))
                .is_none()
        };
        assert!(
            check(None, "localhost:3000"),
            "non-browser clients send no Origin"
        );
        assert!(check(Some("http://localhost:3000"), "localhost:3000"));
        assert!(check(
            Some("https://chat.example.com"),
            "chat.example.com:443"
        ));
        assert!(check(Some("https://APP.example.com"), "localhost:3000"));
        assert!(!check(Some("http://evil.example"), "localhost:3000"));
        assert!(!check(Some("null"), "localhost:3000"));
        assert!(!check(Some("http://localhost:3001"), "localhost:3000"));
        let open = OriginPolicy::new(&["*".into()]);
        assert!(open
            .refuse(&request("/socket.io/", Some("http://evil.example"), "x"))
            .is_none());
    }

    #[test]
    fn client_script_is_served_with_etag() {
        let response = client_script(&request("/socket.io/socket.io.js", None, "x")).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let etag = response.headers()[header::ETAG].clone();
        let mut again = request("/socket.io/socket.io.js", None, "x");
        again.headers_mut().insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            client_script(&again).unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        assert!(client_script(&request("/socket.io/other.js", None, "x")).is_none());
    }
}
