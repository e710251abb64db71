//! Where the standalone server's secrets come from (the token secrets, a Redis URL
//! with a password, the admin token): a file or the environment, never the command
//! line, which every user of the machine can read (`ps`, `/proc/<pid>/cmdline`).

use std::path::Path;

/// The environment variable holding one token secret.
pub const SECRET_ENV: &str = "PALAVER_TOKEN_SECRET";
/// The environment variable holding the Redis URL.
pub const REDIS_ENV: &str = "PALAVER_REDIS";
/// The environment variable holding the admin token.
pub const ADMIN_TOKEN_ENV: &str = "PALAVER_ADMIN_TOKEN";

/// Why no secret could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The token secret was given on the command line.
    #[error(
        "--token-secret is not accepted: a command line is visible to every user of the \
         machine (ps). Put the secret in a file readable only by this server and pass \
         --token-secret-file PATH, or set the environment variable {SECRET_ENV}"
    )]
    OnCommandLine,
    /// A Redis URL with a password was given on the command line.
    #[error(
        "--redis with a password is not accepted: a command line is visible to every user \
         of the machine (ps). Put the URL in a file readable only by this server and pass \
         --redis-file PATH, or set the environment variable {REDIS_ENV}"
    )]
    RedisPasswordOnCommandLine,
    /// Both a file and its environment variable were given.
    #[error("give the {what} either with {flag} or with {env}, not both")]
    TwoSources {
        /// What the value is.
        what: &'static str,
        /// The file's flag.
        flag: &'static str,
        /// The environment variable.
        env: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read the {what} file {path}: {source}")]
    Unreadable {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: String,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file has only blank lines.
    #[error("the {what} file {path} has no secret in it (only blank lines)")]
    Empty {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: String,
    },
}

/// One secret setting: its name in messages, its file flag and its environment variable.
struct Source {
    what: &'static str,
    flag: &'static str,
    env: &'static str,
}

impl Source {
    /// The non-blank lines of `file` (line ends and surrounding spaces removed), or
    /// the value of the environment variable as one line; `None` when neither is
    /// given (an empty variable counts as not given).
    fn lines(&self, file: Option<&Path>) -> Result<Option<Vec<String>>, SecretError> {
        let from_env = std::env::var(self.env)
            .ok()
            .filter(|value| !value.is_empty());
        match (file, from_env) {
            (Some(_), Some(_)) => Err(SecretError::TwoSources {
                what: self.what,
                flag: self.flag,
                env: self.env,
            }),
            (Some(path), None) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
                        what: self.what,
                        path: path.display().to_string(),
                        source,
                    })?;
                let lines: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(String::from)
                    .collect();
                if lines.is_empty() {
                    return Err(SecretError::Empty {
                        what: self.what,
                        path: path.display().to_string(),
                    });
                }
                Ok(Some(lines))
            }
            (None, from_env) => Ok(from_env.map(|value| vec![value])),
        }
    }

    /// The first line of [`lines`](Self::lines).
    fn value(&self, file: Option<&Path>) -> Result<Option<String>, SecretError> {
        Ok(self.lines(file)?.map(|mut lines| lines.swap_remove(0)))
    }
}

/// The accepted token secrets, the one to sign with first: every non-blank line of
/// `file`, or the value of [`SECRET_ENV`]; `None` when neither is given.
pub fn token_secrets(
    on_command_line: bool,
    file: Option<&Path>,
) -> Result<Option<Vec<String>>, SecretError> {
    if on_command_line {
        return Err(SecretError::OnCommandLine);
    }
    Source {
        what: "token secret",
        flag: "--token-secret-file",
        env: SECRET_ENV,
    }
    .lines(file)
}

/// The Redis URL: `on_command_line` (`--redis`, refused when it holds a password),
/// or the first line of `file`, or the value of [`REDIS_ENV`]; `None` when none is
/// given.
pub fn redis_url(
    on_command_line: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, SecretError> {
    let from_secret = Source {
        what: "Redis URL",
        flag: "--redis-file",
        env: REDIS_ENV,
    }
    .value(file)?;
    match (on_command_line, from_secret) {
        (Some(url), _) if has_credentials(url) => Err(SecretError::RedisPasswordOnCommandLine),
        (Some(_), Some(_)) => Err(SecretError::TwoSources {
            what: "Redis URL",
            flag: "--redis",
            env: "--redis-file or PALAVER_REDIS",
        }),
        (Some(url), None) => Ok(Some(url.to_string())),
        (None, from_secret) => Ok(from_secret),
    }
}

/// The admin token: the first line of `file`, or the value of [`ADMIN_TOKEN_ENV`].
pub fn admin_token(file: Option<&Path>) -> Result<Option<String>, SecretError> {
    Source {
        what: "admin token",
        flag: "--admin-token-file",
        env: ADMIN_TOKEN_ENV,
    }
    .value(file)
}

/// Whether a URL carries a user or password (`scheme://user:password@host`).
fn has_credentials(url: &str) -> bool {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

#[cfg(test)]
mod tests {
    use super::has_credentials;

    #[test]
    fn credentials_are_seen_in_the_authority_only() {
        assert!(has_credentials("redis://:secret@127.0.0.1:6379"));
        assert!(has_credentials("rediss://user:secret@host/0"));
        assert!(!has_credentials("redis://127.0.0.1:6379"));
        assert!(!has_credentials("redis://127.0.0.1:6379/0?name=a@b"));
    }
}
