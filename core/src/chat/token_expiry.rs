//! Token mode: a connection lives only as long as its token. A task per
//! connection sends `token_expiring {expires_at}` `identity.token_expiry_notice_secs`
//! before the token stops being accepted, and at that moment `kicked {reason:
//! "auth_expired"}` and a disconnect, unless the client renewed the token with
//! `login {token}` (or logged out) in time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tokio::sync::watch;

use super::conn::Conn;
use crate::protocol::{now_ms, ErrorCode};
use crate::shared::Shared;

/// Why a wait ended.
enum Wake {
    /// The moment waited for has come.
    Due,
    /// The token's end changed (renewal, logout, a new login): start over.
    Changed,
    /// The connection is gone.
    Closed,
}

/// Follows the connection's token until the connection closes.
pub(super) async fn watch<A: Adapter>(shared: Arc<Shared>, socket: SocketRef<A>, conn: Arc<Conn>) {
    let notice_ms = i64::try_from(
        shared
            .config
            .identity
            .token_expiry_notice_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let mut end = conn.watch_token_end();
    loop {
        let Some(ends_at) = *end.borrow_and_update() else {
            // No token identity (yet, or after a logout): wait for one.
            tokio::select! {
                changed = end.changed() => if changed.is_err() { return },
                () = conn.closed() => return,
            }
            continue;
        };
        if notice_ms > 0 {
            match sleep_until(ends_at.saturating_sub(notice_ms), &mut end, &conn).await {
                Wake::Due => {
                    let notice = json!({ "expires_at": ends_at });
                    if let Err(e) = socket.emit("token_expiring", &notice) {
                        tracing::debug!(sid = %socket.id, "could not send token_expiring: {e}");
                    }
                }
                Wake::Changed => continue,
                Wake::Closed => return,
            }
        }
        match sleep_until(ends_at, &mut end, &conn).await {
            Wake::Due => {}
            Wake::Changed => continue,
            Wake::Closed => return,
        }
        if end_connection(&socket, &conn, ends_at).await {
            return;
        }
    }
}

/// Waits until `at_ms` (wall clock, as a token's `exp`), or until the token's end
/// changes or the connection closes.
async fn sleep_until(at_ms: i64, end: &mut watch::Receiver<Option<i64>>, conn: &Conn) -> Wake {
    loop {
        let left = at_ms.saturating_sub(now_ms());
        if left <= 0 {
            return Wake::Due;
        }
        tokio::select! {
            // Woken early (the wall clock moved): the loop waits for the rest.
            () = tokio::time::sleep(Duration::from_millis(left.unsigned_abs())) => {}
            changed = end.changed() => {
                return if changed.is_ok() { Wake::Changed } else { Wake::Closed };
            }
            () = conn.closed() => return Wake::Closed,
        }
    }
}

/// Ends the connection whose token ended at `ends_at`, in turn with its requests,
/// so that a renewal that arrived before is applied first. Returns `false` when
/// the token was renewed (or the identity dropped) meanwhile.
async fn end_connection<A: Adapter>(socket: &SocketRef<A>, conn: &Conn, ends_at: i64) -> bool {
    let ticket = conn.sequencer.ticket();
    let turn = conn.sequencer.wait(ticket).await;
    if conn.is_closed() {
        return true;
    }
    if conn.token_end() != Some(ends_at) {
        return false;
    }
    // Requests queued behind this turn are skipped: the connection is ending.
    conn.close();
    let farewell = json!({ "reason": ErrorCode::AuthExpired.as_str() });
    if let Err(e) = socket.emit("kicked", &farewell) {
        tracing::debug!(sid = %socket.id, "could not send kicked: {e}");
    }
    // The disconnect handler waits for its turn: this one must be over first.
    drop(turn);
    if let Err(e) = socket.clone().disconnect() {
        tracing::debug!(sid = %socket.id, "could not disconnect an expired connection: {e}");
    }
    true
}
