//! Talking to one DNS server: a signed UPDATE or a plain query over UDP, straight to the
//! server's address (never through the system resolver), and turning hickory's answers
//! and errors into messages an operator can act on.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::NetError;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::secret::Signer;

/// Why an exchange with a server failed, already phrased for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// What went wrong.
    pub message: String,
    /// True when the server answered and refused (a rejected key), so a request that
    /// changes data surely was not applied; false when no answer came, so it may have been.
    pub refused: bool,
}

/// Sends `message` to `server` (signed when a signer is given) and returns its answer,
/// whatever its RCODE; fails only when no answer could be had or trusted.
pub async fn exchange(
    server: SocketAddr,
    message: Message,
    signer: Option<&Signer>,
    timeout: Duration,
) -> Result<Message, WireError> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .with_signer(signer.map(|s| s.inner.clone()))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let driver = tokio::spawn(background);
    let mut options = DnsRequestOptions::default();
    options.use_edns = false;
    let mut responses = client.send(DnsRequest::new(message, options));
    // The exchange has its own timeout; this one only guards against a stream that
    // never ends.
    let first = tokio::time::timeout(timeout.saturating_mul(2), responses.next()).await;
    driver.abort();
    match first {
        Ok(Some(Ok(response))) => Ok(response.into_message()),
        Ok(Some(Err(e))) => Err(describe(&e, server, signer)),
        Ok(None) => Err(unanswered(format!(
            "{server} closed the exchange without answering"
        ))),
        Err(_) => Err(unanswered(format!(
            "no answer from {server} within {timeout:?}"
        ))),
    }
}

/// Asks `server` for the `rtype` records at `name` (unsigned, no recursion).
pub async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, WireError> {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    exchange(server, message, None, timeout).await
}

/// One line for a failed exchange. hickory rejects an unsigned BADSIG/BADKEY answer to a
/// signed request as a protocol error about truncated HMACs; that means the server did
/// not accept our key, so it says so.
pub fn describe(error: &NetError, server: SocketAddr, signer: Option<&Signer>) -> WireError {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    if let Some(signer) = signer
        && ["truncated hmac", "wrong key", "hmac"]
            .iter()
            .any(|sign| lower.contains(sign))
    {
        return WireError {
            message: format!(
                "TSIG key rejected by {server} (BADSIG/BADKEY): the server does not accept \
                 the key {}; check its name, algorithm and secret",
                signer.label
            ),
            refused: true,
        };
    }
    unanswered(match error {
        NetError::Timeout => format!("no answer from {server} (timed out)"),
        NetError::Io(e) => format!("cannot reach {server}: {e}"),
        _ => format!("exchange with {server} failed: {text}"),
    })
}

fn unanswered(message: String) -> WireError {
    WireError {
        message,
        refused: false,
    }
}

/// The RFC mnemonic of an RCODE with what it usually means for an UPDATE.
pub fn rcode_text(code: ResponseCode) -> String {
    let (name, hint) = match u16::from(code) {
        0 => ("NOERROR", ""),
        1 => ("FORMERR", "the server could not parse the request"),
        2 => ("SERVFAIL", "the server failed internally"),
        3 => ("NXDOMAIN", "the name does not exist"),
        4 => ("NOTIMP", "the server does not support dynamic updates"),
        5 => (
            "REFUSED",
            "the server's policy refuses this update (update-policy / allow-update)",
        ),
        6 => ("YXDOMAIN", "a name that must not exist exists"),
        7 => ("YXRRSET", "a record set that must not exist exists"),
        8 => ("NXRRSET", "a record set that must exist does not"),
        9 => (
            "NOTAUTH",
            "the server is not authoritative for the zone, or did not accept the TSIG key",
        ),
        10 => ("NOTZONE", "the name is outside the zone"),
        16 => ("BADSIG", "TSIG key rejected"),
        17 => (
            "BADKEY",
            "TSIG key rejected: the server does not know the key",
        ),
        18 => ("BADTIME", "TSIG rejected: the clocks differ too much"),
        other => return format!("RCODE {other}"),
    };
    if hint.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({hint})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcodes_use_the_rfc_names() {
        let table = [
            (ResponseCode::NoError, "NOERROR"),
            (ResponseCode::Refused, "REFUSED"),
            (ResponseCode::NotAuth, "NOTAUTH"),
            (ResponseCode::YXRRSet, "YXRRSET"),
            (ResponseCode::NXRRSet, "NXRRSET"),
            (ResponseCode::NotZone, "NOTZONE"),
            (ResponseCode::NotImp, "NOTIMP"),
            (ResponseCode::ServFail, "SERVFAIL"),
            (ResponseCode::BADSIG, "BADSIG"),
            (ResponseCode::BADKEY, "BADKEY"),
            (ResponseCode::BADTIME, "BADTIME"),
        ];
        for (code, want) in table {
            assert!(rcode_text(code).starts_with(want), "{code:?}");
        }
        assert_eq!(rcode_text(ResponseCode::Unknown(3841)), "RCODE 3841");
    }

    #[test]
    fn truncated_hmac_errors_mean_the_key_was_rejected() {
        let signer = super::super::secret::Signer {
            inner: hickory_proto::rr::TSigner::new(
                vec![7; 32],
                hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
                Name::from_ascii("k.").unwrap(),
                300,
            )
            .unwrap(),
            label: "k (hmac-sha256)".into(),
        };
        let hickory = NetError::from(
            "Please file an issue with https://github.com/hickory-dns/hickory-dns to support \
             truncated HMACs with TSIG"
                .to_owned(),
        );
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let err = describe(&hickory, server, Some(&signer));
        let text = err.to_string();
        assert!(err.refused);
        assert!(text.starts_with("TSIG key rejected"), "{text}");
        assert!(text.contains("k (hmac-sha256)"), "{text}");
        // Unsigned queries have no key to blame.
        assert!(!describe(&hickory, server, None).refused);
        let timeout = describe(&NetError::Timeout, server, None);
        assert!(!timeout.refused && timeout.message.contains("timed out"));
    }
}
