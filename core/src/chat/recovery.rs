//! Recovery of missed messages: what comes after a client's position in a
//! room's (or a conversation's) history, or the newest page when that cannot
//! be told exactly, as the `join {since}` and `history {after}` answers carry it.

use serde_json::{json, Map, Value};

use crate::history::{After, Head, HistoryError, LostReason};
use crate::protocol::{ChatMessage, Position};
use crate::shared::Shared;

/// The fields a recovering answer adds: `messages` (the missed ones, or the
/// newest page), `has_more`, `recovered`, `reason` when not, and the history's
/// `epoch` and `offset`.
pub(crate) struct Recovery {
    pub messages: Vec<ChatMessage>,
    pub has_more: bool,
    pub head: Head,
    /// `None`: recovered. Otherwise why not.
    pub lost: Option<Unrecovered>,
}

/// Why a recovery returned the newest page instead of what was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unrecovered {
    /// The history cannot tell exactly what came after the position.
    Lost(LostReason),
    /// The store cannot be read right now (cluster mode: Redis unreachable).
    Unavailable,
}

impl Unrecovered {
    /// Its name on the wire (`reason`).
    fn as_str(self) -> &'static str {
        match self {
            Self::Lost(reason) => reason.as_str(),
            Self::Unavailable => "unavailable",
        }
    }
}

impl Recovery {
    /// Writes the fields into an answer, with the messages under `messages_key`
    /// (`history` in a `join` answer, `messages` in a `history` answer), in
    /// their wire form (`private` for a conversation).
    pub(crate) fn write_into(self, answer: &mut Map<String, Value>, messages_key: &str) {
        answer.insert(messages_key.into(), wire_messages(&self.messages));
        answer.insert("has_more".into(), json!(self.has_more));
        answer.insert("recovered".into(), json!(self.lost.is_none()));
        if let Some(reason) = self.lost {
            answer.insert("reason".into(), json!(reason.as_str()));
        }
        write_head(answer, &self.head);
    }
}

/// The history's epoch and newest offset, as every `join` and `history` answer
/// carries them.
pub(crate) fn write_head(answer: &mut Map<String, Value>, head: &Head) {
    answer.insert("epoch".into(), json!(head.epoch.as_deref()));
    answer.insert("offset".into(), json!(head.offset));
}

/// Messages in their wire form: room messages as they are, private ones as
/// `private` events carry them.
pub(crate) fn wire_messages(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|message| match message.to_private() {
                Some(private) => json!(private),
                None => json!(message),
            })
            .collect(),
    )
}

/// What came after `from` in `room`'s history (at most `limit` messages), or
/// the newest `fallback_page` messages with the reason it could not be told.
/// An unreachable store is `unavailable` with no messages, never an error: the
/// request it answers (a `join`) succeeded, and the client can ask again.
pub(crate) async fn recover(
    shared: &Shared,
    room: &str,
    from: &Position,
    limit: usize,
    fallback_page: usize,
) -> Result<Recovery, HistoryError> {
    let max_missing = shared.config.history.recovery_max as u64;
    let reason = match shared.history.after(room, from, limit, max_missing).await {
        Ok(After::Found {
            messages,
            has_more,
            head,
        }) => {
            return Ok(Recovery {
                messages,
                has_more,
                head,
                lost: None,
            })
        }
        Ok(After::Lost { reason, .. }) => Unrecovered::Lost(reason),
        Err(HistoryError::Unavailable(e)) => {
            tracing::debug!(room, "recovery unavailable: {e}");
            return Ok(Recovery {
                messages: Vec::new(),
                has_more: true,
                head: Head::default(),
                lost: Some(Unrecovered::Unavailable),
            });
        }
        Err(e) => return Err(e),
    };
    if fallback_page == 0 {
        // The newest page is empty, but the head still tells where to resume.
        let page = shared.history.page(room, None, 1).await?;
        return Ok(Recovery {
            messages: Vec::new(),
            has_more: page.head.offset > 0,
            head: page.head,
            lost: Some(reason),
        });
    }
    let page = shared.history.page(room, None, fallback_page).await?;
    Ok(Recovery {
        messages: page.messages,
        has_more: page.has_more,
        head: page.head,
        lost: Some(reason),
    })
}
