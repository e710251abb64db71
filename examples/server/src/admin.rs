//! The admin listener: the engine's counters for operators, on an address of
//! their own (loopback unless a token protects it), never on the chat port that
//! every client reaches.
//!
//! - `GET /healthz`: the same liveness answer as on the chat port (open).
//! - `GET /stats`: [`palaver_core::Stats`] as JSON.
//! - `GET /metrics`: the same counters in the Prometheus text format.
//!
//! With an admin token, `/stats` and `/metrics` answer 401 unless the request
//! carries `Authorization: Bearer <token>`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use crate::metrics::{self, Metrics};
use crate::status::Status;

/// Why the admin listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A non-loopback address without a token would show the counters to anyone.
    #[error(
        "--admin-listen {0} is reachable from other machines: give an admin token too \
         (--admin-token-file PATH or PALAVER_ADMIN_TOKEN), or listen on 127.0.0.1"
    )]
    OpenWithoutToken(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr} for the admin listener: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What binding said.
        source: std::io::Error,
    },
}

/// Parses `--admin-listen`: `PORT` (on 127.0.0.1) or `HOST:PORT`.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    value
        .parse()
        .map_err(|_| format!("{value:?} is neither a port nor an address like 127.0.0.1:9464"))
}

/// Binds `addr` and serves the admin routes on a thread of their own (they keep
/// answering while the engine stops); returns the bound address.
pub fn start(
    addr: SocketAddr,
    token: Option<String>,
    status: Arc<Status>,
) -> Result<SocketAddr, AdminError> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(AdminError::OpenWithoutToken(addr));
    }
    let bind_error = |source| AdminError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let app = routes(token, status);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(bind_error)?;
    std::thread::Builder::new()
        .name("palaver-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => axum::serve(listener, app).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("admin listener failed: {e}");
                }
            });
        })
        .map_err(bind_error)?;
    Ok(local_addr)
}

fn routes(token: Option<String>, status: Arc<Status>) -> Router {
    let metrics = Arc::new(Metrics::new(status.clone()));
    let stats_status = status.clone();
    let private = Router::new()
        .route(
            "/stats",
            get(move || {
                let stats = stats_status.stats();
                async move { Json(stats) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.render();
                async move {
                    match text {
                        Ok(text) => {
                            ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
                        }
                        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    }
                }
            }),
        );
    let private = match token {
        Some(token) => {
            let token: Arc<str> = token.into();
            private.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                let token = token.clone();
                async move { bearer_check(&token, request, next).await }
            }))
        }
        None => private,
    };
    Router::new()
        .route(
            "/healthz",
            get(move || {
                let health = status.health();
                async move { health }
            }),
        )
        .merge(private)
}

/// Lets the request through when it carries `Authorization: Bearer <token>`;
/// compared in constant time, so the answer's timing tells nothing of the token.
async fn bearer_check(token: &str, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
    )
        .into_response()
}
