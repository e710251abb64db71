//! `login {name}` (open mode) or `login {token}` (token mode): an identity for a
//! connection that has none.

use serde_json::json;
use socketioxide::adapter::Adapter;

use super::{invalid_payload, Ctx, Outcome};
use crate::chat::session::{send_session, take_identity};
use crate::identity::Claim;
use crate::protocol::{ChatError, ErrorCode, LoginRequest};

pub(super) async fn handle<A: Adapter>(
    ctx: &Ctx<'_, A>,
    request: LoginRequest,
) -> Result<Outcome, ChatError> {
    if ctx.conn.identity().is_some() {
        return Err(ChatError::new(
            ErrorCode::AlreadyLoggedIn,
            "already logged in; log out first",
        ));
    }
    let claim = check(ctx, request)?;
    let user = take_identity(ctx.shared, ctx.socket, ctx.conn, claim).await?;
    send_session(ctx.shared, ctx.socket, Some(&user));
    Ok(Outcome::Answer(json!({ "user": user })))
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
