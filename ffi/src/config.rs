//! `palaver_config`: the engine configuration, built field by field or from JSON.
//!
//! Each setter validates the configuration it would make (core's
//! `Config::validate`); a refused value is `PALAVER_INVALID_ARG`, the argument
//! being what is wrong, while `palaver_config_from_json` reports the code of
//! core's `ConfigError` (`PALAVER_INVALID_CONFIG`).

use std::ffi::c_char;

use palaver_core::{Config, HistoryStorage, IdentityMode};

use crate::error::{
    boundary, boundary_void, fail, fail_with, optional_str_arg, palaver_result, str_arg, try_ffi,
};

/// An engine configuration. Opaque; made by `palaver_config_new` or
/// `palaver_config_from_json`, freed by `palaver_config_free`.
pub struct palaver_config {
    pub(crate) inner: Config,
}

/// The limits `palaver_config_set_limit` can change (docs/PROTOCOL.md, "Limits").
/// The type is `uint32_t`, as the function's `limit` parameter.
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum palaver_limit {
    /// Longest message text, in characters (default 2000).
    PALAVER_LIMIT_MAX_TEXT_CHARS = 0,
    /// Longest display name, in characters (default 32).
    PALAVER_LIMIT_MAX_NAME_CHARS = 1,
    /// Longest room name, in characters (default 64).
    PALAVER_LIMIT_MAX_ROOM_CHARS = 2,
    /// Rooms per connection (default 16).
    PALAVER_LIMIT_MAX_ROOMS_PER_CONNECTION = 3,
    /// Sustained `message` + `private` rate per connection, per second (default 10).
    PALAVER_LIMIT_MESSAGES_PER_SECOND = 4,
    /// Burst of `message` + `private` per connection (default 20).
    PALAVER_LIMIT_MESSAGE_BURST = 5,
    /// Sustained rate of all requests per connection, per second (default 30).
    PALAVER_LIMIT_REQUESTS_PER_SECOND = 6,
    /// Burst of all requests per connection (default 60).
    PALAVER_LIMIT_REQUEST_BURST = 7,
    /// Largest Engine.IO payload in bytes (default 65536).
    PALAVER_LIMIT_MAX_PAYLOAD_BYTES = 8,
    /// Connections per client IP address (default 64).
    PALAVER_LIMIT_MAX_CONNECTIONS_PER_IP = 9,
}

impl palaver_limit {
    /// Every limit, for looking a number up.
    const ALL: [palaver_limit; 10] = [
        Self::PALAVER_LIMIT_MAX_TEXT_CHARS,
        Self::PALAVER_LIMIT_MAX_NAME_CHARS,
        Self::PALAVER_LIMIT_MAX_ROOM_CHARS,
        Self::PALAVER_LIMIT_MAX_ROOMS_PER_CONNECTION,
        Self::PALAVER_LIMIT_MESSAGES_PER_SECOND,
        Self::PALAVER_LIMIT_MESSAGE_BURST,
        Self::PALAVER_LIMIT_REQUESTS_PER_SECOND,
        Self::PALAVER_LIMIT_REQUEST_BURST,
        Self::PALAVER_LIMIT_MAX_PAYLOAD_BYTES,
        Self::PALAVER_LIMIT_MAX_CONNECTIONS_PER_IP,
    ];

    /// The limit whose number is `value`, if any.
    fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|limit| *limit as u32 == value)
    }
}

/// Creates a configuration with every default (port 3000 on 127.0.0.1, open names,
/// SQLite history in `palaver-history.db`). On success `*out` receives it; free it
/// with `palaver_config_free`.
///
/// # Safety
/// `out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_new(out: *mut *mut palaver_config) -> palaver_result {
    boundary! {
        if out.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "out is NULL");
        }
        let config = Box::new(palaver_config { inner: Config::default() });
        // SAFETY: checked non-NULL; valid per contract.
        unsafe { *out = Box::into_raw(config) };
        palaver_result::PALAVER_OK
    }
}

/// Creates a configuration from a JSON object (the format of docs/PROTOCOL.md,
/// "Configuration"; missing fields take their defaults, unknown fields are an
/// error). `PALAVER_INVALID_CONFIG` when it is malformed or cannot work. On success
/// `*out` receives it; free it with `palaver_config_free`.
///
/// # Safety
/// `json` is a NUL-terminated string; `out` is valid for writing.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_from_json(
    json: *const c_char,
    out: *mut *mut palaver_config,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let json = try_ffi!(unsafe { str_arg(json, "json") });
        if out.is_null() {
            return fail(palaver_result::PALAVER_INVALID_ARG, "out is NULL");
        }
        // serde would also take a JSON array, as the fields in order: only an object
        // is the documented format.
        if !json.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{') {
            return fail(
                palaver_result::PALAVER_INVALID_CONFIG,
                "invalid configuration JSON: expected a JSON object",
            );
        }
        let inner = match Config::from_json(json) {
            Ok(config) => config,
            Err(e) => return fail_with(e.code(), e),
        };
        // SAFETY: checked non-NULL; valid per contract.
        unsafe { *out = Box::into_raw(Box::new(palaver_config { inner })) };
        palaver_result::PALAVER_OK
    }
}

/// Frees a configuration. NULL is ignored.
///
/// # Safety
/// `config` is NULL or was made by this library and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_free(config: *mut palaver_config) {
    boundary_void! {
        if !config.is_null() {
            // SAFETY: made by Box::into_raw in this library, freed once per contract.
            drop(unsafe { Box::from_raw(config) });
        }
    }
}

/// Applies `change` to `config` only if the result is a valid configuration
/// (`PALAVER_INVALID_ARG` with the reason otherwise, `config` untouched).
fn change_validated(config: &mut Config, change: impl FnOnce(&mut Config)) -> palaver_result {
    let mut candidate = config.clone();
    change(&mut candidate);
    if let Err(e) = candidate.validate() {
        return fail(palaver_result::PALAVER_INVALID_ARG, e.to_string());
    }
    *config = candidate;
    palaver_result::PALAVER_OK
}

/// Borrows the configuration mutably or fails with `PALAVER_INVALID_ARG`.
unsafe fn config_mut<'a>(config: *mut palaver_config) -> Result<&'a mut Config, palaver_result> {
    if config.is_null() {
        return Err(fail(palaver_result::PALAVER_INVALID_ARG, "config is NULL"));
    }
    // SAFETY: non-NULL and made by this library per the callers' contracts.
    Ok(unsafe { &mut (*config).inner })
}

/// Sets the interface to bind (an IP address such as "127.0.0.1" or "0.0.0.0").
///
/// # Safety
/// `config` was made by this library; `host` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_host(
    config: *mut palaver_config,
    host: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        let host = try_ffi!(unsafe { str_arg(host, "host") });
        if host.parse::<std::net::IpAddr>().is_err() {
            return fail(palaver_result::PALAVER_INVALID_ARG, format!("{host:?} is not an IP address"));
        }
        config.host = host.to_string();
        palaver_result::PALAVER_OK
    }
}

/// Sets the port to bind; 0 lets the system pick one (`palaver_engine_port` tells).
///
/// # Safety
/// `config` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_port(
    config: *mut palaver_config,
    port: u16,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        config.port = port;
        palaver_result::PALAVER_OK
    }
}

/// Whether the engine binds host:port itself (default true). With false, the host
/// accepts connections and hands them over with `palaver_engine_adopt`.
///
/// # Safety
/// `config` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_listen(
    config: *mut palaver_config,
    listen: bool,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        config.listen = listen;
        palaver_result::PALAVER_OK
    }
}

/// Whether the engine runs the built-in chat on "/" (default true). With false,
/// "/" is a host namespace, like those added with `palaver_engine_namespace`:
/// every event of its clients reaches the callback as a
/// `PALAVER_EVENT_SOCKET_EVENT`, and the host answers with the Socket.IO commands
/// (`palaver_engine_emit_to_socket`, `palaver_engine_run`, ...). The JSON field
/// `"builtin_chat"` of `palaver_config_from_json` is the same setting.
///
/// # Safety
/// `config` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_builtin_chat(
    config: *mut palaver_config,
    builtin_chat: bool,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        config.builtin_chat = builtin_chat;
        palaver_result::PALAVER_OK
    }
}

/// Token mode with this HS256 secret (clients present a JWT with `sub`, `name`,
/// `exp`); NULL returns to open mode (clients choose names).
///
/// # Safety
/// `config` was made by this library; `secret` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_token_secret(
    config: *mut palaver_config,
    secret: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        match try_ffi!(unsafe { optional_str_arg(secret, "secret") }) {
            Some("") => return fail(palaver_result::PALAVER_INVALID_ARG, "secret is empty"),
            Some(secret) => {
                config.identity.mode = IdentityMode::Token;
                config.identity.token_secret = Some(secret.to_string());
            }
            None => {
                config.identity.mode = IdentityMode::Open;
                config.identity.token_secret = None;
            }
        }
        palaver_result::PALAVER_OK
    }
}

/// Keeps history in this SQLite file (created when missing); NULL keeps history in
/// memory only.
///
/// # Safety
/// `config` was made by this library; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_history_file(
    config: *mut palaver_config,
    path: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        match try_ffi!(unsafe { optional_str_arg(path, "path") }) {
            Some(path) => {
                config.history.storage = HistoryStorage::Sqlite;
                config.history.path = path.into();
            }
            None => config.history.storage = HistoryStorage::Memory,
        }
        palaver_result::PALAVER_OK
    }
}

/// Allows one more browser origin ("https://chat.example.com"), or every origin
/// with "*".
///
/// # Safety
/// `config` was made by this library; `origin` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_add_cors_origin(
    config: *mut palaver_config,
    origin: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        let origin = try_ffi!(unsafe { str_arg(origin, "origin") });
        change_validated(config, |c| c.cors_origins.push(origin.to_string()))
    }
}

/// Allows one more host name the chat answers to ("chat.example.com"), the
/// subdomains of one ("*.example.com"), or every name with "*". IP addresses,
/// "localhost" and names under ".localhost" are always allowed; requests sent
/// to other names are refused with HTTP 403 `host_not_allowed` (DNS
/// rebinding, docs/PROTOCOL.md). A scheme, port or path is
/// `PALAVER_INVALID_ARG`.
///
/// # Safety
/// `config` was made by this library; `host` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_add_allowed_host(
    config: *mut palaver_config,
    host: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        let host = try_ffi!(unsafe { str_arg(host, "host") });
        change_validated(config, |c| c.allowed_hosts.push(host.to_string()))
    }
}

/// Sets one limit (`limit` is a `palaver_limit`; any other number is
/// `PALAVER_INVALID_ARG`). Zero and out-of-range values are `PALAVER_INVALID_ARG`.
///
/// # Safety
/// `config` was made by this library.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_limit(
    config: *mut palaver_config,
    limit: u32,
    value: u64,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        if value == 0 {
            return fail(palaver_result::PALAVER_INVALID_ARG, "limits must be greater than zero");
        }
        let small = |value: u64| u32::try_from(value).ok();
        let limits = &mut config.limits;
        let Some(limit) = palaver_limit::from_u32(limit) else {
            return fail(palaver_result::PALAVER_INVALID_ARG, format!("{limit} is not a palaver_limit"));
        };
        let applied = match limit {
            palaver_limit::PALAVER_LIMIT_MAX_TEXT_CHARS => {
                usize::try_from(value).map(|v| limits.max_text_chars = v).is_ok()
            }
            palaver_limit::PALAVER_LIMIT_MAX_NAME_CHARS => {
                usize::try_from(value).map(|v| limits.max_name_chars = v).is_ok()
            }
            palaver_limit::PALAVER_LIMIT_MAX_ROOM_CHARS => {
                usize::try_from(value).map(|v| limits.max_room_chars = v).is_ok()
            }
            palaver_limit::PALAVER_LIMIT_MAX_ROOMS_PER_CONNECTION => {
                usize::try_from(value).map(|v| limits.max_rooms_per_connection = v).is_ok()
            }
            palaver_limit::PALAVER_LIMIT_MESSAGES_PER_SECOND => {
                small(value).map(|v| limits.messages_per_second = v).is_some()
            }
            palaver_limit::PALAVER_LIMIT_MESSAGE_BURST => {
                small(value).map(|v| limits.message_burst = v).is_some()
            }
            palaver_limit::PALAVER_LIMIT_REQUESTS_PER_SECOND => {
                small(value).map(|v| limits.requests_per_second = v).is_some()
            }
            palaver_limit::PALAVER_LIMIT_REQUEST_BURST => {
                small(value).map(|v| limits.request_burst = v).is_some()
            }
            palaver_limit::PALAVER_LIMIT_MAX_PAYLOAD_BYTES => {
                limits.max_payload_bytes = value;
                true
            }
            palaver_limit::PALAVER_LIMIT_MAX_CONNECTIONS_PER_IP => {
                usize::try_from(value).map(|v| limits.max_connections_per_ip = v).is_ok()
            }
        };
        if !applied {
            return fail(palaver_result::PALAVER_INVALID_ARG, format!("{value} is too large for this limit"));
        }
        palaver_result::PALAVER_OK
    }
}

/// Cluster mode: share rooms, presence and history with the other nodes using
/// this Redis (`redis://host:port[/db]`, Redis 7 or newer); NULL turns it off.
///
/// # Safety
/// `config` was made by this library; `url` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn palaver_config_set_redis_url(
    config: *mut palaver_config,
    url: *const c_char,
) -> palaver_result {
    boundary! {
        // SAFETY: forwarded contract.
        let config = try_ffi!(unsafe { config_mut(config) });
        // SAFETY: forwarded contract.
        let url = try_ffi!(unsafe { optional_str_arg(url, "url") });
        change_validated(config, |c| c.cluster.redis_url = url.map(str::to_string))
    }
}
