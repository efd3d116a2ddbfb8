//! What a failed Kubernetes API call means to the controller: `kube::Error` →
//! [`ErrorClass`]. Pure; the table test below is the specification.
//!
//! The API server answers errors with a `Status` object whose `code` is the HTTP status
//! and whose `reason` is one of the `StatusReason` constants of apimachinery
//! (`Unauthorized`, `Forbidden`, `TooManyRequests`, `NotFound`, `Conflict`, `Invalid`,
//! `Timeout`, `ServiceUnavailable`, `InternalError`, ...). Failures below HTTP (refused or
//! reset connections, TLS handshakes, timeouts) arrive as transport errors and are told
//! apart by walking the error's source chain.

use std::error::Error as StdError;
use std::io;

use lifeboat_provider::{ErrorClass, Op, ProviderError};

/// The class of a failed call.
pub fn classify(err: &kube::Error) -> ErrorClass {
    use kube::Error as E;
    match err {
        E::Api(status) => classify_status(status.code, &status.reason, &status.message),
        // The client could not obtain credentials (an exec plugin such as
        // `aws eks get-token` failing, an expired token file): to us the account is as lost
        // as when the server rejects them.
        E::Auth(_) => ErrorClass::CredentialsRejected,
        // A TLS failure means we cannot talk to this server safely: unavailable.
        E::RustlsTls(_) => ErrorClass::Unavailable,
        E::HyperError(e) if e.is_timeout() => ErrorClass::Timeout,
        E::HyperError(_) | E::Service(_) | E::ReadEvents(_) => transport(err),
        E::InferConfig(_) | E::InferKubeconfig(_) | E::TlsRequired => ErrorClass::InvalidRequest,
        // Discovery found no such kind: a raw manifest names a kind this cluster lacks.
        E::Discovery(_) => ErrorClass::InvalidRequest,
        _ => ErrorClass::Internal,
    }
}

/// The class of an API server answer, from its HTTP status code, `reason` and message.
pub fn classify_status(code: u16, reason: &str, message: &str) -> ErrorClass {
    match code {
        401 => ErrorClass::CredentialsRejected,
        // A ResourceQuota refusal is a 403 too; it means "no room here", not "not allowed".
        403 if message.contains("exceeded quota") => ErrorClass::CapacityExhausted,
        403 => ErrorClass::PermissionDenied,
        429 => ErrorClass::Throttled,
        404 => ErrorClass::NotFound,
        408 | 504 => ErrorClass::Timeout,
        // The API server's own "the request did not finish in time" comes as a 500 with
        // reason `Timeout`.
        500 if reason == "Timeout" => ErrorClass::Timeout,
        // A server-side apply of an object that does not fit its kind's schema (a
        // ConfigMap's data not strings) is refused with a 500 by the real server, without
        // a reason: the request is wrong, retrying it cannot help.
        500 if message.starts_with("failed to create typed patch object") => {
            ErrorClass::InvalidRequest
        }
        500..=599 => ErrorClass::Unavailable,
        400 | 409 | 413 | 415 | 422 => ErrorClass::InvalidRequest,
        // 410 Gone is an expired resourceVersion: retry with a fresh read.
        410 => ErrorClass::Internal,
        _ => ErrorClass::Internal,
    }
}

/// A transport failure: a timeout when something in the chain says so, else the server
/// could not be reached (refused, reset, DNS, TLS).
fn transport(err: &(dyn StdError + 'static)) -> ErrorClass {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return ErrorClass::Timeout;
        }
        if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return ErrorClass::Timeout;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return ErrorClass::Timeout;
        }
        next = e.source();
    }
    ErrorClass::Unavailable
}

/// The vendor code kept on a [`ProviderError`]: the HTTP status and the Status reason
/// (`403 Forbidden`), or the kind of transport failure.
pub fn code(err: &kube::Error) -> Option<String> {
    match err {
        kube::Error::Api(status) if status.reason.is_empty() => Some(status.code.to_string()),
        kube::Error::Api(status) => Some(format!("{} {}", status.code, status.reason)),
        _ => None,
    }
}

/// A classified [`ProviderError`] for a failed call, with what was being done.
///
/// kube's errors carry no credentials (tokens live in headers that errors never
/// quote), so its message is safe to keep.
pub fn provider_error(op: Op, doing: &str, err: kube::Error) -> ProviderError {
    let class = classify(&err);
    let mut out = ProviderError::new(class, op, format!("{doing}: {err}"));
    if let Some(code) = code(&err) {
        out = out.with_code(code);
    }
    out.with_source(err)
}

/// True when the error is the API server saying the object does not exist.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// True when the error is an optimistic-concurrency or precondition conflict.
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    fn io(kind: io::ErrorKind) -> kube::Error {
        kube::Error::Service(Box::new(io::Error::new(kind, "transport")))
    }

    /// Answers as the API server sends them (status code, `reason`, message), plus
    /// transport failures, and the class each must get.
    #[test]
    fn classification_table() {
        let table: Vec<(kube::Error, ErrorClass)> = vec![
            (
                api(
                    500,
                    "",
                    r#"failed to create typed patch object (prod/bad; /v1, Kind=ConfigMap): .data.k: expected string, got &value.valueUnstructured{Value:map[string]interface {}{"nested":true}}"#,
                ),
                ErrorClass::InvalidRequest,
            ),
            (
                api(401, "Unauthorized", "Unauthorized"),
                ErrorClass::CredentialsRejected,
            ),
            (
                api(
                    403,
                    "Forbidden",
                    r#"deployments.apps is forbidden: User "system:serviceaccount:ops:lifeboat" cannot list resource "deployments" in API group "apps" in the namespace "prod""#,
                ),
                ErrorClass::PermissionDenied,
            ),
            (
                api(
                    403,
                    "Forbidden",
                    r#"deployments.apps "api-g2" is forbidden: exceeded quota: object-counts, requested: count/deployments.apps=1, used: count/deployments.apps=10, limited: count/deployments.apps=10"#,
                ),
                ErrorClass::CapacityExhausted,
            ),
            (
                api(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                ),
                ErrorClass::Throttled,
            ),
            (
                api(
                    500,
                    "InternalError",
                    "Internal error occurred: etcdserver: leader changed",
                ),
                ErrorClass::Unavailable,
            ),
            (
                api(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                ),
                ErrorClass::Unavailable,
            ),
            (
                api(
                    502,
                    "Failed to parse error data",
                    "<html>Bad Gateway</html>",
                ),
                ErrorClass::Unavailable,
            ),
            (
                api(
                    504,
                    "Timeout",
                    "the server was unable to return a response in the time allotted",
                ),
                ErrorClass::Timeout,
            ),
            (
                api(
                    500,
                    "Timeout",
                    "Timeout: request did not complete within requested timeout",
                ),
                ErrorClass::Timeout,
            ),
            (
                api(404, "NotFound", r#"deployments.apps "api-g1" not found"#),
                ErrorClass::NotFound,
            ),
            (
                api(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on deployments.apps \"api-g1\": the object has been modified",
                ),
                ErrorClass::InvalidRequest,
            ),
            (
                api(409, "AlreadyExists", r#"services "api-g1" already exists"#),
                ErrorClass::InvalidRequest,
            ),
            (
                api(
                    422,
                    "Invalid",
                    r#"Deployment.apps "API" is invalid: metadata.name: Invalid value"#,
                ),
                ErrorClass::InvalidRequest,
            ),
            (
                api(400, "BadRequest", "the server rejected our request"),
                ErrorClass::InvalidRequest,
            ),
            (
                api(410, "Expired", "too old resource version"),
                ErrorClass::Internal,
            ),
            (
                io(io::ErrorKind::ConnectionRefused),
                ErrorClass::Unavailable,
            ),
            (io(io::ErrorKind::ConnectionReset), ErrorClass::Unavailable),
            (io(io::ErrorKind::TimedOut), ErrorClass::Timeout),
            (
                kube::Error::Service(Box::new(NestedTimeout(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "read timed out",
                )))),
                ErrorClass::Timeout,
            ),
            (kube::Error::TlsRequired, ErrorClass::InvalidRequest),
            (
                kube::Error::SerdeError(serde_json::from_str::<u8>("x").unwrap_err()),
                ErrorClass::Internal,
            ),
        ];
        for (err, want) in table {
            assert_eq!(classify(&err), want, "{err}");
        }
    }

    #[test]
    fn an_elapsed_timer_is_a_timeout() {
        let elapsed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(std::time::Duration::ZERO, std::future::pending::<()>())
                    .await
                    .unwrap_err()
            });
        assert_eq!(
            classify(&kube::Error::Service(Box::new(elapsed))),
            ErrorClass::Timeout
        );
    }

    #[test]
    fn provider_errors_keep_the_status_as_code() {
        let err = provider_error(
            Op::Probe,
            "listing deployments",
            api(401, "Unauthorized", "Unauthorized"),
        );
        assert_eq!(err.class, ErrorClass::CredentialsRejected);
        assert_eq!(err.code.as_deref(), Some("401 Unauthorized"));
        assert!(err.message.starts_with("listing deployments: "), "{err}");
        assert!(err.source.is_some());
    }

    #[test]
    fn every_status_code_has_a_class_and_never_panics() {
        for code in 0..=1000u16 {
            let _ = classify_status(code, "", "");
        }
    }

    /// A wrapper that hides a timeout one level down, as hyper-timeout and tower do.
    #[derive(Debug)]
    struct NestedTimeout(io::Error);
    impl std::fmt::Display for NestedTimeout {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("request failed")
        }
    }
    impl StdError for NestedTimeout {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
}
