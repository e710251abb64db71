//! Where the standalone server's token secrets come from: a file or the
//! environment, never the command line, which every user of the machine can read
//! (`ps`, `/proc/<pid>/cmdline`).

use std::path::Path;

/// The environment variable holding one secret.
pub const SECRET_ENV: &str = "PALAVER_TOKEN_SECRET";

/// Why no secrets could be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret was given on the command line.
    #[error(
        "--token-secret is not accepted: a command line is visible to every user of the \
         machine (ps). Put the secret in a file readable only by this server and pass \
         --token-secret-file PATH, or set the environment variable {SECRET_ENV}"
    )]
    OnCommandLine,
    /// Both a file and the environment variable were given.
    #[error(
        "give the token secret either with --token-secret-file or with {SECRET_ENV}, not both"
    )]
    TwoSources,
    /// The file could not be read.
    #[error("cannot read the token secret file {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file has only blank lines.
    #[error("the token secret file {0} has no secret (one per line)")]
    Empty(String),
}

/// The accepted secrets, the one to sign with first: every non-blank line of
/// `file` (line ends and surrounding spaces removed), or the value of
/// [`SECRET_ENV`]; `None` when neither is given.
pub fn token_secrets(
    on_command_line: bool,
    file: Option<&Path>,
) -> Result<Option<Vec<String>>, SecretError> {
    if on_command_line {
        return Err(SecretError::OnCommandLine);
    }
    let from_env = std::env::var(SECRET_ENV)
        .ok()
        .filter(|secret| !secret.is_empty());
    match (file, from_env) {
        (Some(_), Some(_)) => Err(SecretError::TwoSources),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
                path: path.display().to_string(),
                source,
            })?;
            let secrets: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(String::from)
                .collect();
            if secrets.is_empty() {
                return Err(SecretError::Empty(path.display().to_string()));
            }
            Ok(Some(secrets))
        }
        (None, from_env) => Ok(from_env.map(|secret| vec![secret])),
    }
}
