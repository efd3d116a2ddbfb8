//! The one place that turns what SSH servers and Redfish BMCs say into an [`ErrorClass`].
//!
//! Pure: it sees plain facts (an HTTP status, an I/O error kind, an SSH outcome), never a
//! connection, so the table tests below pin the whole mapping down.

use std::io::ErrorKind;

use lifeboat_provider::ErrorClass;

/// What went wrong talking SSH to a host, reduced to what matters for classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFailure {
    /// The TCP connection failed with this I/O error kind.
    Connect(ErrorKind),
    /// No answer within the connect timeout.
    TimedOut,
    /// The server rejected every key we offered.
    AuthRejected,
    /// The host's key is not in `known_hosts` and trust-on-first-use is off.
    HostKeyUnknown,
    /// The host's key differs from the one recorded: a reinstalled host or an attack.
    HostKeyChanged,
    /// Our own key file could not be read or parsed, or no agent is running.
    LocalKey,
    /// The server closed the connection or broke the protocol mid-way.
    Protocol,
}

impl SshFailure {
    /// The stable code kept in [`lifeboat_provider::ProviderError::code`].
    pub fn code(self) -> &'static str {
        match self {
            SshFailure::Connect(_) => "ssh-connect",
            SshFailure::TimedOut => "ssh-timeout",
            SshFailure::AuthRejected => "ssh-auth-rejected",
            SshFailure::HostKeyUnknown => "ssh-host-key-unknown",
            SshFailure::HostKeyChanged => "ssh-host-key-changed",
            SshFailure::LocalKey => "ssh-local-key",
            SshFailure::Protocol => "ssh-protocol",
        }
    }
}

/// The class of an SSH failure.
///
/// A rejected login means our access to the host is gone (revoked key, reinstalled
/// host): treated like revoked cloud credentials. An untrusted host key is not the
/// vendor refusing us but us refusing the host; a human must look, so it degrades the
/// provider and alerts (`PermissionDenied`) without evacuating on its own.
pub fn ssh(failure: SshFailure) -> ErrorClass {
    match failure {
        SshFailure::Connect(kind) => io(kind),
        SshFailure::TimedOut => ErrorClass::Timeout,
        SshFailure::AuthRejected => ErrorClass::CredentialsRejected,
        SshFailure::HostKeyUnknown | SshFailure::HostKeyChanged => ErrorClass::PermissionDenied,
        SshFailure::LocalKey => ErrorClass::InvalidRequest,
        SshFailure::Protocol => ErrorClass::Unavailable,
    }
}

/// The class of a failed TCP connection (to SSH, a BMC or a workload).
pub fn io(kind: ErrorKind) -> ErrorClass {
    match kind {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ErrorClass::Timeout,
        ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
        ErrorKind::InvalidInput | ErrorKind::InvalidData => ErrorClass::InvalidRequest,
        // Refused, reset, aborted, unreachable network or host, DNS failure, ...: the
        // host is not answering, which is transient until it lasts.
        _ => ErrorClass::Unavailable,
    }
}

/// The class of an HTTP status a Redfish service answered with (DSP0266 §"Status codes").
pub fn bmc_status(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::CredentialsRejected,
        403 => ErrorClass::PermissionDenied,
        404 => ErrorClass::NotFound,
        // Redfish services answer 429 or 503 (with Retry-After) when busy.
        429 => ErrorClass::Throttled,
        408 | 504 => ErrorClass::Timeout,
        400 | 405 | 409 | 412 | 415 | 422 | 501 => ErrorClass::InvalidRequest,
        500..=599 => ErrorClass::Unavailable,
        _ => ErrorClass::Internal,
    }
}

/// Whether a Redfish `Status.Health` (or `HealthRollup`) value makes the host degraded.
/// Redfish defines `OK`, `Warning` and `Critical`; only `Critical` needs attention now.
pub fn health_is_critical(health: Option<&str>) -> bool {
    health.is_some_and(|h| h.eq_ignore_ascii_case("critical"))
}

/// How bad a class is for a pool, used to report the worst per-host failure when no host
/// of the pool can be used: losing the account outranks a refusal, which outranks a
/// transient failure.
pub fn severity(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::AccountSuspended => 9,
        ErrorClass::CredentialsRejected => 8,
        ErrorClass::PermissionDenied => 7,
        ErrorClass::InvalidRequest => 6,
        ErrorClass::NotFound => 5,
        ErrorClass::Internal => 4,
        ErrorClass::Unavailable => 3,
        ErrorClass::Timeout => 2,
        ErrorClass::Throttled => 1,
        ErrorClass::CapacityExhausted => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bmc_statuses_map_as_the_redfish_spec_uses_them() {
        let table = [
            (401, ErrorClass::CredentialsRejected),
            (403, ErrorClass::PermissionDenied),
            (404, ErrorClass::NotFound),
            (429, ErrorClass::Throttled),
            (408, ErrorClass::Timeout),
            (504, ErrorClass::Timeout),
            (400, ErrorClass::InvalidRequest),
            (405, ErrorClass::InvalidRequest),
            (409, ErrorClass::InvalidRequest),
            (412, ErrorClass::InvalidRequest),
            (501, ErrorClass::InvalidRequest),
            (500, ErrorClass::Unavailable),
            (502, ErrorClass::Unavailable),
            (503, ErrorClass::Unavailable),
            (302, ErrorClass::Internal),
            (418, ErrorClass::Internal),
        ];
        for (status, want) in table {
            assert_eq!(bmc_status(status), want, "HTTP {status}");
        }
    }

    #[test]
    fn ssh_failures_map_to_their_classes() {
        let table = [
            (SshFailure::AuthRejected, ErrorClass::CredentialsRejected),
            (SshFailure::HostKeyUnknown, ErrorClass::PermissionDenied),
            (SshFailure::HostKeyChanged, ErrorClass::PermissionDenied),
            (SshFailure::TimedOut, ErrorClass::Timeout),
            (
                SshFailure::Connect(ErrorKind::ConnectionRefused),
                ErrorClass::Unavailable,
            ),
            (
                SshFailure::Connect(ErrorKind::ConnectionReset),
                ErrorClass::Unavailable,
            ),
            (
                SshFailure::Connect(ErrorKind::HostUnreachable),
                ErrorClass::Unavailable,
            ),
            (
                SshFailure::Connect(ErrorKind::TimedOut),
                ErrorClass::Timeout,
            ),
            (SshFailure::LocalKey, ErrorClass::InvalidRequest),
            (SshFailure::Protocol, ErrorClass::Unavailable),
        ];
        for (failure, want) in table {
            assert_eq!(ssh(failure), want, "{failure:?}");
        }
    }

    #[test]
    fn only_critical_health_degrades() {
        assert!(health_is_critical(Some("Critical")));
        assert!(health_is_critical(Some("CRITICAL")));
        assert!(!health_is_critical(Some("OK")));
        assert!(!health_is_critical(Some("Warning")));
        assert!(!health_is_critical(None));
    }

    #[test]
    fn severity_orders_every_class_distinctly() {
        let mut seen: Vec<u8> = ErrorClass::ALL.iter().map(|c| severity(*c)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ErrorClass::ALL.len());
        assert!(severity(ErrorClass::CredentialsRejected) > severity(ErrorClass::Unavailable));
    }

    proptest! {
        #[test]
        fn every_5xx_but_501_and_504_is_unavailable(status in 500u16..600) {
            prop_assume!(status != 501 && status != 504);
            prop_assert_eq!(bmc_status(status), ErrorClass::Unavailable);
        }

        #[test]
        fn no_2xx_or_3xx_is_an_account_loss(status in 200u16..400) {
            prop_assert!(!bmc_status(status).is_account_loss());
        }
    }
}
