//! `login {name}` (open mode) or `login {token}` (token mode): an identity for a
//! connection that has none. In token mode, `login {token}` on a connection
//! logged in as the token's user renews it: the connection lives on until the new
//! token expires.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{invalid_payload, Ctx, Outcome};
use crate::chat::session::{take_identity, welcome};
use crate::config::IdentityMode;
use crate::identity::Claim;
use crate::protocol::{ChatError, ErrorCode, LoginRequest, User};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: LoginRequest,
) -> Result<Outcome, ChatError> {
    if let Some(current) = ctx.conn.identity() {
        return match request.token {
            Some(token) if ctx.shared.auth.mode() == IdentityMode::Token => {
                renew(ctx, current, token)
            }
            _ => Err(already_logged_in()),
        };
    }
    let claim = check(ctx, request)?;
    let user = take_identity(ctx.shared, ctx.socket, ctx.conn, claim).await?;
    welcome(ctx.shared, ctx.socket, Some(&user)).await;
    Ok(Outcome::Answer(json!({ "user": user })))
}

/// A fresh token for the connection's own user: the connection now ends when
/// that token expires. Identity, name and rooms stay as they are.
fn renew<A: Adapter>(ctx: &Ctx<'_, A>, current: User, token: String) -> Result<Outcome, ChatError> {
    let shared = ctx.shared;
    let Some(Claim::Token(fresh)) = shared
        .auth
        .claim(None, Some(token), &shared.config.limits)?
    else {
        return Err(already_logged_in());
    };
    if fresh.user.id != current.id {
        return Err(ChatError::new(
            ErrorCode::AlreadyLoggedIn,
            "logged in as another user; log out first",
        ));
    }
    ctx.conn.set_token_end(Some(fresh.ends_at_ms));
    Ok(Outcome::Answer(
        json!({ "user": current, "expires_at": fresh.ends_at_ms }),
    ))
}

fn already_logged_in() -> ChatError {
    ChatError::new(
        ErrorCode::AlreadyLoggedIn,
        "already logged in; log out first",
    )
}

/// The identity a `login` (or a `join` with a name) asks for, checked.
pub(super) fn check<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: LoginRequest,
) -> Result<Claim, ChatError> {
    let shared = ctx.shared;
    shared
        .auth
        .claim(request.name, request.token, &shared.config.limits)?
        .ok_or_else(|| invalid_payload("login needs a name"))
}
