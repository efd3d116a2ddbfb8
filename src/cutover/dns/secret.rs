//! Loading the TSIG secret from where the config points (a file or an environment
//! variable) and turning it into a signer. Errors name the file or variable, never the
//! secret; the signer's `Debug` shows the key name only.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use data_encoding::BASE64;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm as WireAlgorithm;

use super::record::absolute_name;
use crate::config::{TsigAlgorithm, TsigConfig};

/// How far the server's clock may be from ours, in seconds (BIND and RFC 8945 use 300).
const FUDGE_SECS: u16 = 300;

/// A TSIG signer with a `Debug` that cannot leak the key.
#[derive(Clone)]
pub struct Signer {
    /// What signs the updates.
    pub inner: TSigner,
    /// `NAME (ALGORITHM)`, for messages.
    pub label: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.label)
    }
}

/// Builds the signer, reading the secret through `env` (a parameter so tests need not
/// touch the process environment) and relative files against `base_dir`.
pub fn signer(
    tsig: &TsigConfig,
    base_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Signer> {
    let text = match (&tsig.secret_file, &tsig.secret_env) {
        (Some(file), None) => {
            let path = if file.is_absolute() {
                file.clone()
            } else {
                base_dir.join(file)
            };
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading the TSIG secret file {}", path.display()))?
        }
        (None, Some(var)) => env(var).with_context(|| {
            format!("the TSIG secret variable {var} is not set in the environment")
        })?,
        (Some(_), Some(_)) => bail!("tsig: give secret_file or secret_env, not both"),
        (None, None) => bail!(
            "tsig: the secret is missing: set secret_file (a file holding it) or secret_env \
             (a variable holding it); it is never written in the config itself"
        ),
    };
    let key =
        decode_secret(&text).with_context(|| match (&tsig.secret_file, &tsig.secret_env) {
            (Some(f), _) => format!("the TSIG secret in {}", f.display()),
            (_, Some(v)) => format!("the TSIG secret in ${v}"),
            _ => "the TSIG secret".to_owned(),
        })?;
    let name = absolute_name(&tsig.name).map_err(anyhow::Error::msg)?;
    let algorithm = match tsig.algorithm {
        TsigAlgorithm::HmacSha256 => WireAlgorithm::HmacSha256,
        TsigAlgorithm::HmacSha512 => WireAlgorithm::HmacSha512,
    };
    let inner = TSigner::new(key, algorithm, name, FUDGE_SECS)
        .map_err(|e| anyhow::anyhow!("TSIG key {}: {e}", tsig.name))?;
    Ok(Signer {
        inner,
        label: format!("{} ({})", tsig.name, tsig.algorithm),
    })
}

/// The key bytes from a bare base64 secret, or from a BIND key file
/// (`key "n" { algorithm hmac-sha256; secret "BASE64"; };`, as `tsig-keygen` writes it).
pub fn decode_secret(text: &str) -> Result<Vec<u8>> {
    let b64 = match text.find("secret") {
        Some(at) => {
            let rest = &text[at + "secret".len()..];
            let open = rest
                .find('"')
                .context("a BIND key file: secret \"...\" is not quoted")?;
            let rest = &rest[open + 1..];
            let close = rest
                .find('"')
                .context("a BIND key file: secret \"...\" is not closed")?;
            &rest[..close]
        }
        None => text,
    };
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        bail!("it is empty");
    }
    // The error from the decoder names a position, never the text.
    let key = BASE64
        .decode(compact.as_bytes())
        .map_err(|e| anyhow::anyhow!("it is not valid base64 ({e})"))?;
    if key.len() < 16 {
        bail!("it is {} bytes long; use at least 16", key.len());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0ISE=";

    fn tsig(file: Option<&str>, env: Option<&str>) -> TsigConfig {
        TsigConfig {
            name: "lifeboat".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret_file: file.map(PathBuf::from),
            secret_env: env.map(str::to_owned),
        }
    }

    #[test]
    fn bare_and_bind_key_file_forms_decode_alike() {
        let bind =
            format!("key \"lifeboat\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n");
        assert_eq!(
            decode_secret(&bind).unwrap(),
            decode_secret(SECRET).unwrap()
        );
        assert_eq!(
            decode_secret(&format!("  {SECRET}\n")).unwrap(),
            b"secret-secret-secret-secret!!"
        );
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let bad = "c2VjcmV0!!notbase64";
        let err = format!("{:#}", decode_secret(bad).unwrap_err());
        assert!(!err.contains(bad), "{err}");
        assert!(decode_secret("c2hvcnQ=").is_err(), "too short");
        assert!(decode_secret("   ").is_err());
    }

    #[test]
    fn the_secret_comes_from_a_file_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), SECRET).unwrap();
        let s = signer(&tsig(Some("k"), None), dir.path(), |_| None).unwrap();
        assert_eq!(s.inner.key(), b"secret-secret-secret-secret!!");
        assert_eq!(format!("{s:?}"), "Signer(lifeboat (hmac-sha256))");
    }

    #[test]
    fn the_secret_comes_from_the_environment() {
        let s = signer(&tsig(None, Some("K")), Path::new("."), |v| {
            (v == "K").then(|| SECRET.to_owned())
        })
        .unwrap();
        assert_eq!(s.inner.signer_name().to_ascii(), "lifeboat.");
        let err = signer(&tsig(None, Some("MISSING")), Path::new("."), |_| None).unwrap_err();
        assert!(err.to_string().contains("MISSING"), "{err}");
    }

    #[test]
    fn exactly_one_source_is_required() {
        let none = signer(&tsig(None, None), Path::new("."), |_| None).unwrap_err();
        assert!(none.to_string().contains("secret_file"), "{none}");
        let both = signer(&tsig(Some("f"), Some("V")), Path::new("."), |_| None).unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
    }

    proptest! {
        #[test]
        fn any_key_round_trips(key in proptest::collection::vec(any::<u8>(), 16..96)) {
            prop_assert_eq!(decode_secret(&BASE64.encode(&key)).unwrap(), key);
        }

        #[test]
        fn decoding_never_panics(text in ".*") {
            let _ = decode_secret(&text);
        }
    }
}
