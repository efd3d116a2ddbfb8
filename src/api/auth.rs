//! Who may call `/api`: one bearer token, from `LIFEBOAT_API_TOKEN`, the configured
//! token file, or `STATE_DIR/api-token` (made with a random token on first start).
//! Compared in constant time; never logged, never echoed.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::Config;

/// The environment variable that overrides the token file, for the daemon and clients.
pub const TOKEN_ENV: &str = "LIFEBOAT_API_TOKEN";
/// The token file lifeboat makes in the state folder when none is configured.
pub const TOKEN_FILE: &str = "api-token";

/// The API's bearer token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from its text (surrounding whitespace, such as a file's last newline, is
    /// not part of it). An empty token is refused: it would let every caller in.
    pub fn new(text: &str) -> anyhow::Result<Token> {
        let text = text.trim();
        if text.is_empty() {
            bail!("the API token is empty");
        }
        Ok(Token(text.to_owned()))
    }

    /// The text to present as `Authorization: Bearer ...` (clients only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that does not depend on where they
    /// differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// Where the token of `config`'s daemon lives when the environment does not set it.
pub fn token_path(config: &Config, state_dir: &Path) -> PathBuf {
    match &config.api.token_file {
        Some(file) => config.resolve_path(file),
        None => state_dir.join(TOKEN_FILE),
    }
}

/// The daemon's token: the environment's, else the file's; the default file is made
/// (mode 0600, 32 random bytes in hex) when missing. A configured file must exist.
pub fn daemon_token(config: &Config, state_dir: &Path) -> anyhow::Result<Token> {
    if let Ok(text) = std::env::var(TOKEN_ENV) {
        return Token::new(&text).with_context(|| format!("reading {TOKEN_ENV}"));
    }
    let path = token_path(config, state_dir);
    if config.api.token_file.is_none() && !path.exists() {
        let token: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        write_private(&path, &token)
            .with_context(|| format!("creating the API token file {}", path.display()))?;
        tracing::info!(file = %path.display(), "created the API token");
    }
    read_token(&path)
}

/// A client's token: the environment's, else the daemon's file.
pub fn client_token(config: &Config, state_dir: &Path) -> anyhow::Result<Token> {
    if let Ok(text) = std::env::var(TOKEN_ENV) {
        return Token::new(&text).with_context(|| format!("reading {TOKEN_ENV}"));
    }
    read_token(&token_path(config, state_dir))
}

fn read_token(path: &Path) -> anyhow::Result<Token> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the API token file {} (or set {TOKEN_ENV})",
            path.display()
        )
    })?;
    Token::new(&text).with_context(|| format!("in {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{text}")
}

/// The middleware in front of every `/api` route: 401 without the right bearer token.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        _ => {
            tracing::warn!(
                method = %request.method(),
                path = %request.uri().path(),
                token = if presented.is_some() { "wrong" } else { "missing" },
                "refused an API call"
            );
            let mut response = (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "a valid bearer token is required"})),
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_never_print() {
        let token = Token::new("s3cret\n").unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret2"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(Token::new(" \n").is_err());
    }
}
