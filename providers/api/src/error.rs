//! The classified error of the adapter contract.

use std::fmt;

/// What kind of failure an adapter met, in terms the controller can act on.
///
/// Classifying is each adapter's job (in its own `classify.rs`, from the vendor's error
/// codes and transport failures); the controller decides from the class alone and never
/// parses a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The vendor suspended or blocked the account, or the account may not use the
    /// service. Confirmed on consecutive probes, it makes the controller evacuate every
    /// provider of the account.
    AccountSuspended,
    /// The vendor rejects the credentials (revoked, expired, unknown). Treated like a
    /// suspension: the account is lost to us until a human acts.
    CredentialsRejected,
    /// The credentials are valid but not allowed to do this. Degrades the provider and
    /// raises an alert; never a reason to evacuate on its own.
    PermissionDenied,
    /// The vendor asks us to slow down. Back off; never a reason to evacuate.
    Throttled,
    /// The vendor answered with a server error, or the connection failed or was reset.
    /// Transient; a long run of it makes the provider unreachable.
    Unavailable,
    /// No answer within the deadline. Transient, like `Unavailable`.
    Timeout,
    /// The provider has no room for the request. Try the next candidate.
    CapacityExhausted,
    /// The request cannot succeed as specified (bad image, bad parameters). Retrying the
    /// same request here is pointless.
    InvalidRequest,
    /// The provider does not know the referenced object.
    NotFound,
    /// Anything else: a bug or an unexpected answer. Retried with backoff.
    Internal,
}

impl ErrorClass {
    /// Every class, for exhaustive tables and tests.
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::AccountSuspended,
        ErrorClass::CredentialsRejected,
        ErrorClass::PermissionDenied,
        ErrorClass::Throttled,
        ErrorClass::Unavailable,
        ErrorClass::Timeout,
        ErrorClass::CapacityExhausted,
        ErrorClass::InvalidRequest,
        ErrorClass::NotFound,
        ErrorClass::Internal,
    ];

    /// The account itself is lost (suspended or credentials rejected).
    pub fn is_account_loss(self) -> bool {
        matches!(
            self,
            ErrorClass::AccountSuspended | ErrorClass::CredentialsRejected
        )
    }

    /// The provider could not be reached; worth retrying, and evacuating if it lasts.
    pub fn is_unreachable(self) -> bool {
        matches!(self, ErrorClass::Unavailable | ErrorClass::Timeout)
    }

    /// Retrying the same call on the same provider may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Throttled
                | ErrorClass::Unavailable
                | ErrorClass::Timeout
                | ErrorClass::Internal
        )
    }

    /// The stable, kebab-case name used in configs, logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::AccountSuspended => "account-suspended",
            ErrorClass::CredentialsRejected => "credentials-rejected",
            ErrorClass::PermissionDenied => "permission-denied",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::CapacityExhausted => "capacity-exhausted",
            ErrorClass::InvalidRequest => "invalid-request",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads back the names of [`ErrorClass::as_str`], as configs, logs and condition texts
/// spell them.
impl std::str::FromStr for ErrorClass {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| crate::ParseError::new(s, "an error class (`account-suspended`, ...)"))
    }
}

/// Which contract operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// [`crate::Provider::probe`]
    Probe,
    /// [`crate::Provider::deploy`]
    Deploy,
    /// [`crate::Provider::inspect`]
    Inspect,
    /// [`crate::Provider::retire`]
    Retire,
    /// [`crate::Provider::list_managed`]
    ListManaged,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Probe => "probe",
            Op::Deploy => "deploy",
            Op::Inspect => "inspect",
            Op::Retire => "retire",
            Op::ListManaged => "list-managed",
        })
    }
}

/// A failed contract call: its class, the operation, the vendor's own error code when it
/// has one (`Blocked`, `AuthFailure`, HTTP `401`, ...) and the underlying error.
///
/// Adapters must never put a credential into the message or the source: this error ends
/// up in logs, reports and Kubernetes Events.
#[derive(Debug, thiserror::Error)]
#[error("{op} failed ({class}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct ProviderError {
    /// What the controller should make of it.
    pub class: ErrorClass,
    /// The operation that failed.
    pub op: Op,
    /// The vendor's own error code, kept verbatim for operators and audits.
    pub code: Option<String>,
    /// A human-readable description, free of secrets.
    pub message: String,
    /// The underlying error, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ProviderError {
    /// A new error with no vendor code and no source.
    pub fn new(class: ErrorClass, op: Op, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            op,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the vendor's own error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_class_and_code() {
        let e = ProviderError::new(ErrorClass::AccountSuspended, Op::Probe, "account blocked")
            .with_code("Blocked");
        assert_eq!(
            e.to_string(),
            "probe failed (account-suspended, Blocked): account blocked"
        );
    }

    #[test]
    fn only_suspension_and_rejected_credentials_lose_the_account() {
        let lost: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|c| c.is_account_loss())
            .collect();
        assert_eq!(
            lost,
            [
                ErrorClass::AccountSuspended,
                ErrorClass::CredentialsRejected
            ]
        );
    }

    #[test]
    fn class_names_round_trip_through_their_text() {
        for class in ErrorClass::ALL {
            assert_eq!(class.to_string().parse::<ErrorClass>(), Ok(class));
        }
        assert!("AccountSuspended".parse::<ErrorClass>().is_err());
    }

    #[test]
    fn class_names_round_trip_through_serde() {
        for class in ErrorClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            assert_eq!(serde_json::from_str::<ErrorClass>(&json).unwrap(), class);
        }
    }
}
