//! Deciding who a connection is: open names or signed tokens.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{IdentityConfig, IdentityMode, Limits};
use crate::lookalike;
use crate::protocol::{ChatError, ErrorCode, User, SYSTEM_USER};
use crate::validate;

/// Longest accepted `sub` claim, in bytes.
const MAX_SUBJECT_BYTES: usize = 128;

/// Verifies tokens in token mode; in open mode it has nothing to check.
pub(crate) enum Authenticator {
    Open,
    Token {
        /// Every accepted secret's key, `token_secret` first (key rotation).
        keys: Vec<DecodingKey>,
        validation: Box<Validation>,
        /// Whether tokens must name an audience (`token_audience` is set).
        audience: bool,
    },
}

/// An identity presented and checked, not yet taken: the one decision behind
/// both the handshake and `login`.
pub(crate) enum Claim {
    /// Open mode: this (valid) name, or a free variant of it.
    OpenName(String),
    /// Token mode: the user the token names, and until when.
    Token(TokenIdentity),
}

/// A checked token: who it names and how long a connection may use it.
#[derive(Debug)]
pub(crate) struct TokenIdentity {
    pub user: User,
    /// The last moment the token is accepted (its `exp` plus the leeway), in
    /// milliseconds since the epoch.
    pub ends_at_ms: i64,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    name: Option<String>,
}

impl Authenticator {
    pub(crate) fn new(config: &IdentityConfig) -> Self {
        match config.mode {
            IdentityMode::Open => Self::Open,
            IdentityMode::Token => {
                let keys = config
                    .accepted_secrets()
                    .map(|secret| DecodingKey::from_secret(secret.as_bytes()))
                    .collect();
                let mut validation = Validation::new(Algorithm::HS256);
                validation.leeway = config.token_leeway_secs;
                validation.validate_nbf = true;
                let mut required = vec!["exp", "sub"];
                if let Some(issuer) = &config.token_issuer {
                    validation.set_issuer(&[issuer]);
                    required.push("iss");
                }
                if let Some(audience) = &config.token_audience {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                validation.set_required_spec_claims(&required);
                Self::Token {
                    keys,
                    validation: Box::new(validation),
                    audience: config.token_audience.is_some(),
                }
            }
        }
    }

    pub(crate) fn mode(&self) -> IdentityMode {
        match self {
            Self::Open => IdentityMode::Open,
            Self::Token { .. } => IdentityMode::Token,
        }
    }

    /// What a presented name or token claims. Open mode: the name, if one was
    /// presented (`None`: no identity yet). Token mode: a token is required.
    pub(crate) fn claim(
        &self,
        name: Option<String>,
        token: Option<String>,
        limits: &Limits,
    ) -> Result<Option<Claim>, ChatError> {
        match self {
            Self::Open => name
                .map(|name| validate::name(&name, limits).map(Claim::OpenName))
                .transpose(),
            Self::Token { .. } => {
                let token = token.ok_or_else(|| {
                    ChatError::new(ErrorCode::AuthRequired, "a token is required")
                })?;
                Ok(Some(Claim::Token(self.verify(&token, limits)?)))
            }
        }
    }

    /// Checks a token and returns the user it names.
    pub(crate) fn verify(&self, token: &str, limits: &Limits) -> Result<TokenIdentity, ChatError> {
        let Self::Token {
            keys,
            validation,
            audience,
        } = self
        else {
            return Err(ChatError::new(
                ErrorCode::AuthInvalid,
                "this server does not use tokens",
            ));
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(ChatError::new(
                ErrorCode::AuthRequired,
                "a token is required",
            ));
        }
        let claims = decode(token, keys, validation)
            .map_err(|e| refusal(&e, *audience))?
            .claims;
        let sub = claims.sub;
        if sub.is_empty()
            || sub.len() > MAX_SUBJECT_BYTES
            || sub
                .chars()
                .any(|c| c.is_control() || validate::is_bidi_control(c))
        {
            return Err(ChatError::new(
                ErrorCode::AuthInvalid,
                "the token's sub claim is empty, too long or has control or bidirectional \
                 override characters",
            ));
        }
        let name = match claims.name.as_deref() {
            Some(name) => validate::name(name, limits).map_err(|e| {
                ChatError::new(
                    ErrorCode::AuthInvalid,
                    format!("the token's name claim is unusable: {}", e.message),
                )
            })?,
            // The issuer's subject, whatever its characters (`auth0|abc`), in its
            // NFKC form and shortened to a display name's length. It must not pass
            // for the server's notices: the issuer can give such a user a `name`.
            None => {
                let name: String = lookalike::display_form(&sub)
                    .chars()
                    .take(limits.max_name_chars)
                    .collect();
                if lookalike::is_reserved(&name) {
                    return Err(ChatError::new(
                        ErrorCode::AuthInvalid,
                        format!(
                            "the token's sub claim looks like {SYSTEM_USER:?} and there is no \
                             name claim to show instead"
                        ),
                    ));
                }
                name
            }
        };
        let ends_at_secs = claims.exp.saturating_add(validation.leeway);
        Ok(TokenIdentity {
            user: User {
                id: Arc::from(sub),
                name: Arc::from(name),
            },
            ends_at_ms: i64::try_from(ends_at_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        })
    }
}

/// Decodes with the first key whose signature matches; the other checks are made
/// with that key only, so an expired token is `auth_expired` whichever key signed it.
fn decode(
    token: &str,
    keys: &[DecodingKey],
    validation: &Validation,
) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<Claims>> {
    let mut last = None;
    for key in keys {
        match jsonwebtoken::decode::<Claims>(token, key, validation) {
            Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = Some(e),
            result => return result,
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::InvalidSignature.into()))
}

/// The client's error for a token the JWT checks refused.
fn refusal(error: &jsonwebtoken::errors::Error, audience: bool) -> ChatError {
    match error.kind() {
        ErrorKind::ExpiredSignature => {
            ChatError::new(ErrorCode::AuthExpired, "the token has expired")
        }
        ErrorKind::ImmatureSignature => ChatError::new(
            ErrorCode::AuthNotYetValid,
            "the token is not valid yet (nbf)",
        ),
        ErrorKind::InvalidAudience if !audience => ChatError::new(
            ErrorCode::AuthInvalid,
            "the token is meant for an audience (aud) and this server has none configured",
        ),
        _ => ChatError::new(ErrorCode::AuthInvalid, format!("invalid token: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token_auth() -> Authenticator {
        Authenticator::new(&IdentityConfig {
            mode: IdentityMode::Token,
            token_secret: Some("0123456789abcdef0123456789abcdef".into()),
            token_leeway_secs: 0,
            ..IdentityConfig::default()
        })
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> i64 {
        crate::protocol::now_ms() / 1000
    }

    #[test]
    fn good_token() {
        let token = sign(
            json!({"sub": "u1", "name": "Ada", "exp": now() + 60}),
            "0123456789abcdef0123456789abcdef",
        );
        let user = token_auth()
            .verify(&token, &Limits::default())
            .unwrap()
            .user;
        assert_eq!((&*user.id, &*user.name), ("u1", "Ada"));
    }

    #[test]
    fn subject_is_the_default_name() {
        let token = sign(
            json!({"sub": "auth0|abc123/x:1", "exp": now() + 60}),
            "0123456789abcdef0123456789abcdef",
        );
        let user = token_auth()
            .verify(&token, &Limits::default())
            .unwrap()
            .user;
        assert_eq!(
            (&*user.id, &*user.name),
            ("auth0|abc123/x:1", "auth0|abc123/x:1")
        );
    }

    #[test]
    fn reserved_looking_subject_with_a_name_is_fine() {
        let token = sign(
            json!({"sub": "system", "name": "Sys Admin", "exp": now() + 60}),
            "0123456789abcdef0123456789abcdef",
        );
        let user = token_auth()
            .verify(&token, &Limits::default())
            .unwrap()
            .user;
        assert_eq!((&*user.id, &*user.name), ("system", "Sys Admin"));
    }

    #[test]
    fn bad_tokens() {
        let auth = token_auth();
        let limits = Limits::default();
        let secret = "0123456789abcdef0123456789abcdef";
        let cases = [
            (String::new(), ErrorCode::AuthRequired),
            ("garbage".to_string(), ErrorCode::AuthInvalid),
            (
                sign(json!({"sub": "u1", "exp": now() + 60}), "another secret"),
                ErrorCode::AuthInvalid,
            ),
            (
                sign(json!({"sub": "u1", "exp": now() - 10}), secret),
                ErrorCode::AuthExpired,
            ),
            (sign(json!({"sub": "u1"}), secret), ErrorCode::AuthInvalid),
            (
                sign(json!({"name": "x", "exp": now() + 60}), secret),
                ErrorCode::AuthInvalid,
            ),
            (
                sign(json!({"sub": "", "exp": now() + 60}), secret),
                ErrorCode::AuthInvalid,
            ),
            (
                sign(
                    json!({"sub": "u1", "name": "<b>", "exp": now() + 60}),
                    secret,
                ),
                ErrorCode::AuthInvalid,
            ),
            (
                sign(json!({"sub": "\u{455}ystem", "exp": now() + 60}), secret),
                ErrorCode::AuthInvalid,
            ),
            (
                sign(json!({"sub": "u\u{202e}1", "exp": now() + 60}), secret),
                ErrorCode::AuthInvalid,
            ),
        ];
        for (token, code) in cases {
            assert_eq!(
                auth.verify(&token, &limits).unwrap_err().code,
                code,
                "{token}"
            );
        }
    }

    #[test]
    fn claims_beyond_the_signature() {
        let auth = Authenticator::new(&IdentityConfig {
            mode: IdentityMode::Token,
            token_secret: Some("current".into()),
            token_secrets: vec!["previous".into()],
            token_issuer: Some("issuer".into()),
            token_audience: Some("chat".into()),
            token_leeway_secs: 0,
            ..IdentityConfig::default()
        });
        let limits = Limits::default();
        let code = |claims: serde_json::Value, secret: &str| {
            auth.verify(&sign(claims, secret), &limits)
                .err()
                .map(|e| e.code)
        };
        let exp = now() + 60;
        let good = json!({"sub": "u1", "exp": exp, "iss": "issuer", "aud": "chat"});
        assert_eq!(code(good.clone(), "current"), None);
        assert_eq!(code(good, "previous"), None);
        let cases = [
            (
                json!({"sub": "u1", "exp": exp, "aud": "chat"}),
                ErrorCode::AuthInvalid,
            ),
            (
                json!({"sub": "u1", "exp": exp, "iss": "other", "aud": "chat"}),
                ErrorCode::AuthInvalid,
            ),
            (
                json!({"sub": "u1", "exp": exp, "iss": "issuer"}),
                ErrorCode::AuthInvalid,
            ),
            (
                json!({"sub": "u1", "exp": exp, "iss": "issuer", "aud": ["x", "y"]}),
                ErrorCode::AuthInvalid,
            ),
            (
                json!({"sub": "u1", "exp": exp, "iss": "issuer", "aud": "chat", "nbf": now() + 60}),
                ErrorCode::AuthNotYetValid,
            ),
            (
                json!({"sub": "u1", "exp": now() - 5, "iss": "issuer", "aud": "chat"}),
                ErrorCode::AuthExpired,
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(code(claims.clone(), "previous"), Some(expected), "{claims}");
        }
        assert_eq!(
            code(
                json!({"sub": "u1", "exp": exp, "iss": "issuer", "aud": "chat"}),
                "other"
            ),
            Some(ErrorCode::AuthInvalid)
        );
    }

    #[test]
    fn an_audience_is_refused_when_none_is_configured() {
        let token = sign(
            json!({"sub": "u1", "exp": now() + 60, "aud": "elsewhere"}),
            "0123456789abcdef0123456789abcdef",
        );
        let err = token_auth().verify(&token, &Limits::default()).unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthInvalid);
    }

    #[test]
    fn a_token_ends_at_its_exp_plus_the_leeway() {
        let exp = now() + 60;
        let token = sign(
            json!({"sub": "u1", "exp": exp}),
            "0123456789abcdef0123456789abcdef",
        );
        let strict = token_auth().verify(&token, &Limits::default()).unwrap();
        assert_eq!(strict.ends_at_ms, exp * 1000);
        let lenient = Authenticator::new(&IdentityConfig {
            mode: IdentityMode::Token,
            token_secret: Some("0123456789abcdef0123456789abcdef".into()),
            token_leeway_secs: 30,
            ..IdentityConfig::default()
        });
        let verified = lenient.verify(&token, &Limits::default()).unwrap();
        assert_eq!(verified.ends_at_ms, (exp + 30) * 1000);
    }
}
