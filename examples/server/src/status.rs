//! What the server's HTTP answers about itself read: the engine's handle once it
//! started, and whether it is stopping. `/healthz` on the chat port says only
//! whether the server is alive; the counters are for the admin listener (`admin`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::Json;
use palaver_core::{ChatHandle, Stats};
use serde_json::{json, Value};

/// The running server as its status routes see it.
#[derive(Default)]
pub struct Status {
    chat: OnceLock<ChatHandle>,
    stopping: AtomicBool,
}

impl Status {
    /// Called once the engine started (routes exist before the engine does).
    pub fn started(&self, chat: ChatHandle) {
        let _ = self.chat.set(chat);
    }

    /// Called when a stop begins: from then on `/healthz` answers 503, so a load
    /// balancer sends new clients elsewhere while this server says goodbye.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The engine's counters; `None` before it started.
    pub fn stats(&self) -> Option<Stats> {
        self.chat.get().map(ChatHandle::stats)
    }

    /// Liveness: 200 `{"ok":true}` while the server runs, 503 `{"ok":false}` once
    /// it stops (and before the engine started).
    pub fn health(&self) -> (StatusCode, Json<Value>) {
        let alive = self.chat.get().is_some() && !self.stopping.load(Ordering::Relaxed);
        let status = if alive {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(json!({ "ok": alive })))
    }
}
