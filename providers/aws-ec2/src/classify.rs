//! EC2 failures → [`ErrorClass`]: the heart of account watching for AWS.
//!
//! [`classify`] is pure: it looks at the error code EC2 put in its answer (read by the
//! SDK from either `<Response><Errors><Error><Code>` or `<ErrorResponse><Error><Code>`),
//! the HTTP status, and how the transport failed. [`from_sdk`] extracts exactly those
//! from an SDK error and keeps the error itself as the source, so the vendor's code
//! survives into logs and reports.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use lifeboat_provider::{ErrorClass, Op, ProviderError};

/// How a call to EC2 failed, reduced to what classification needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// EC2 answered with an error: its code (when the body had one) and HTTP status.
    Service {
        /// The `<Code>` of the error body.
        code: Option<&'a str>,
        /// The HTTP status.
        status: u16,
    },
    /// An answer came that could not be read as EC2's (a proxy's error page, garbage).
    Response {
        /// The HTTP status, when there was a response at all.
        status: Option<u16>,
    },
    /// The request never got an answer: connection refused, reset, TLS failure.
    Dispatch {
        /// The connector itself gave up waiting (connect timeout).
        timeout: bool,
    },
    /// The SDK's operation or attempt timeout fired.
    Timeout,
    /// No credentials could be loaded from the AWS chain (nothing configured, the
    /// web-identity token unreadable, instance metadata down). Lifeboat's own problem:
    /// it says nothing about the account, so it must never look like a lost account.
    CredentialsNotLoaded,
    /// The request could not even be built (a bug or a bad config value).
    Construction,
}

/// The class of one failure. Codes come from EC2's API reference ("Common client
/// error codes", "Server error codes"); unknown codes fall back on the HTTP status.
pub fn classify(failure: Failure<'_>) -> ErrorClass {
    match failure {
        Failure::Service { code, status } => code
            .and_then(class_of_code)
            .unwrap_or_else(|| class_of_status(status)),
        Failure::Response { status } => status.map_or(ErrorClass::Unavailable, class_of_status),
        Failure::Dispatch { timeout: true } | Failure::Timeout => ErrorClass::Timeout,
        Failure::Dispatch { timeout: false } => ErrorClass::Unavailable,
        Failure::Construction | Failure::CredentialsNotLoaded => ErrorClass::Internal,
    }
}

/// The class of a known EC2 error code, `None` when the code says nothing about it.
pub fn class_of_code(code: &str) -> Option<ErrorClass> {
    use ErrorClass::*;
    let class = match code {
        // The account is blocked, not verified yet, or not subscribed to EC2: every
        // region and call of the account fails the same way.
        "Blocked" | "PendingVerification" | "OptInRequired" => AccountSuspended,
        "AuthFailure"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidAccessKeyId" => CredentialsRejected,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => PermissionDenied,
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => Throttled,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable" => Unavailable,
        "InsufficientInstanceCapacity"
        | "InstanceLimitExceeded"
        | "VcpuLimitExceeded"
        | "InsufficientCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity" => CapacityExhausted,
        "InvalidInstanceID.NotFound" => NotFound,
        "MissingParameter"
        | "Unsupported"
        | "UnsupportedOperation"
        | "InvalidAMIID.Malformed"
        | "InvalidAMIID.NotFound"
        | "InvalidAMIID.Unavailable"
        | "InvalidParameterValue"
        | "InvalidParameter"
        | "InvalidParameterCombination" => InvalidRequest,
        // Every other `Invalid…` code (a missing subnet, key pair, security group, a
        // malformed id) means the request cannot succeed as written.
        other if other.starts_with("Invalid") => InvalidRequest,
        _ => return None,
    };
    Some(class)
}

/// The class of an HTTP status when the body carried no known code.
pub fn class_of_status(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::CredentialsRejected,
        403 => ErrorClass::PermissionDenied,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::Unavailable,
        400..=499 => ErrorClass::InvalidRequest,
        _ => ErrorClass::Internal,
    }
}

/// Turns an SDK error into the contract's error, classified, with EC2's code kept.
///
/// The message is built from EC2's own error message or the transport failure; neither
/// carries request headers, so no credential can reach it.
pub fn from_sdk<E, R>(op: Op, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static + HasStatus,
{
    let (failure, message) = match &err {
        SdkError::ServiceError(service) => {
            let meta = service.err();
            (
                Failure::Service {
                    code: meta.code(),
                    status: service.raw().status_code(),
                },
                meta.message().unwrap_or("EC2 returned an error").to_owned(),
            )
        }
        SdkError::ResponseError(response) => (
            Failure::Response {
                status: Some(response.raw().status_code()),
            },
            "EC2 sent an answer that could not be read".to_owned(),
        ),
        SdkError::DispatchFailure(_) if credentials_not_loaded(&err) => (
            Failure::CredentialsNotLoaded,
            "no AWS credentials could be loaded (environment, profile, web identity, instance metadata)"
                .to_owned(),
        ),
        SdkError::DispatchFailure(dispatch) => (
            Failure::Dispatch {
                timeout: dispatch.is_timeout(),
            },
            if dispatch.is_timeout() {
                "connecting to EC2 timed out".to_owned()
            } else {
                "the request to EC2 failed before an answer came (connection refused, reset or TLS)"
                    .to_owned()
            },
        ),
        SdkError::TimeoutError(_) => (Failure::Timeout, "EC2 did not answer in time".to_owned()),
        SdkError::ConstructionFailure(_) => (
            Failure::Construction,
            "the EC2 request could not be built".to_owned(),
        ),
        _ => (
            Failure::Response { status: None },
            "unexpected SDK failure".to_owned(),
        ),
    };
    let class = classify(failure);
    let code = match failure {
        Failure::Service {
            code: Some(code), ..
        } => Some(code.to_owned()),
        Failure::Service { status, .. }
        | Failure::Response {
            status: Some(status),
        } => Some(format!("HTTP {status}")),
        Failure::CredentialsNotLoaded => Some("CredentialsNotLoaded".to_owned()),
        _ => None,
    };
    let mut error = ProviderError::new(class, op, message).with_source(err);
    error.code = code;
    error
}

/// Whether the failure comes from the credentials chain rather than from the wire.
fn credentials_not_loaded(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if s.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The HTTP status of a raw response, whatever the SDK's response type.
pub trait HasStatus {
    /// The status code, e.g. 503.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_ec2::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    /// Every EC2 code lifeboat cares about, with the class the controller must see.
    const TABLE: &[(&str, u16, ErrorClass)] = &[
        ("Blocked", 403, AccountSuspended),
        ("PendingVerification", 401, AccountSuspended),
        ("OptInRequired", 401, AccountSuspended),
        ("AuthFailure", 401, CredentialsRejected),
        ("InvalidClientTokenId", 403, CredentialsRejected),
        ("UnrecognizedClientException", 400, CredentialsRejected),
        ("SignatureDoesNotMatch", 403, CredentialsRejected),
        ("ExpiredToken", 400, CredentialsRejected),
        ("UnauthorizedOperation", 403, PermissionDenied),
        ("AccessDenied", 403, PermissionDenied),
        ("RequestLimitExceeded", 503, Throttled),
        ("Throttling", 400, Throttled),
        ("InsufficientInstanceCapacity", 500, CapacityExhausted),
        ("InstanceLimitExceeded", 400, CapacityExhausted),
        ("VcpuLimitExceeded", 400, CapacityExhausted),
        ("InvalidAMIID.NotFound", 400, InvalidRequest),
        ("InvalidAMIID.Malformed", 400, InvalidRequest),
        ("InvalidAMIID.Unavailable", 400, InvalidRequest),
        ("InvalidParameterValue", 400, InvalidRequest),
        ("InvalidParameterCombination", 400, InvalidRequest),
        ("MissingParameter", 400, InvalidRequest),
        ("InvalidSubnetID.NotFound", 400, InvalidRequest),
        ("InvalidKeyPair.NotFound", 400, InvalidRequest),
        ("InvalidInstanceID.Malformed", 400, InvalidRequest),
        ("InvalidInstanceID.NotFound", 400, NotFound),
        ("InternalError", 500, Unavailable),
        ("ServiceUnavailable", 503, Unavailable),
        ("Unavailable", 503, Unavailable),
    ];

    #[test]
    fn every_known_code_has_its_class() {
        for &(code, status, class) in TABLE {
            let got = classify(Failure::Service {
                code: Some(code),
                status,
            });
            assert_eq!(got, class, "{code} (HTTP {status})");
        }
    }

    #[test]
    fn the_code_wins_over_the_status() {
        // Real EC2 answers RequestLimitExceeded with 503: throttled, not unavailable.
        let failure = Failure::Service {
            code: Some("RequestLimitExceeded"),
            status: 503,
        };
        assert_eq!(classify(failure), Throttled);
    }

    #[test]
    fn unknown_codes_and_bodies_fall_back_on_the_status() {
        let table = [
            (None, 500, Unavailable),
            (None, 502, Unavailable),
            (None, 503, Unavailable),
            (Some("SomethingNew"), 504, Unavailable),
            (None, 401, CredentialsRejected),
            (None, 403, PermissionDenied),
            (None, 429, Throttled),
            (Some("SomethingNew"), 400, InvalidRequest),
            (None, 302, Internal),
        ];
        for (code, status, class) in table {
            assert_eq!(
                classify(Failure::Service { code, status }),
                class,
                "{code:?} {status}"
            );
        }
        assert_eq!(
            classify(Failure::Response { status: Some(502) }),
            Unavailable
        );
        assert_eq!(classify(Failure::Response { status: None }), Unavailable);
    }

    #[test]
    fn transport_failures() {
        assert_eq!(classify(Failure::Dispatch { timeout: false }), Unavailable);
        assert_eq!(classify(Failure::Dispatch { timeout: true }), Timeout);
        assert_eq!(classify(Failure::Timeout), Timeout);
        assert_eq!(classify(Failure::Construction), Internal);
        assert_eq!(classify(Failure::CredentialsNotLoaded), Internal);
    }

    #[test]
    fn only_blocked_like_codes_and_rejected_credentials_lose_the_account() {
        for &(code, status, class) in TABLE {
            let lost = matches!(
                code,
                "Blocked"
                    | "PendingVerification"
                    | "OptInRequired"
                    | "AuthFailure"
                    | "InvalidClientTokenId"
                    | "UnrecognizedClientException"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
            );
            assert_eq!(class.is_account_loss(), lost, "{code} {status}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_invalid_requests_never_suspend(
            code in proptest::option::of("[A-Za-z.]{0,30}"),
            status in 0u16..1000,
        ) {
            let class = classify(Failure::Service { code: code.as_deref(), status });
            if code.as_deref().is_some_and(|c| c.starts_with("Invalid")) {
                proptest::prop_assert_ne!(class, AccountSuspended);
            }
        }
    }
}
