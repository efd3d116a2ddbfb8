//! `inspect`: an instance's EC2 state and status checks, then the workload's own health
//! check on the instance address when one is defined and reachable from here. An
//! instance whose tags name another owner than the reference's is `Gone` for it.

use std::time::Duration;

use aws_sdk_ec2::types::{Instance, InstanceStateName, SummaryStatus};
use lifeboat_provider::{
    DeploymentRef, DeploymentState, Endpoint, ErrorClass, HealthCheck, Op, ProviderError,
};

use crate::classify::from_sdk;
use crate::config::AddressKind;
use crate::{Ec2Provider, deploy, list, tags};

pub(crate) async fn inspect(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
) -> Result<DeploymentState, ProviderError> {
    let Some(instance) = owned_instance(provider, dep, Op::Inspect).await? else {
        return Ok(DeploymentState::Gone);
    };
    let instance = &instance;
    let state = instance.state().and_then(|s| s.name()).cloned();
    Ok(match state {
        Some(InstanceStateName::Running) => running(provider, instance).await?,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => {
            DeploymentState::Gone
        }
        Some(state @ (InstanceStateName::Stopping | InstanceStateName::Stopped)) => {
            DeploymentState::Failed {
                reason: format!("instance is {}: {}", state.as_str(), state_reason(instance)),
            }
        }
        Some(other) => DeploymentState::Pending {
            detail: format!("instance is {}", other.as_str()),
        },
        None => DeploymentState::Pending {
            detail: "instance state not reported yet".into(),
        },
    })
}

/// The instance behind `dep.handle`, while its tags still name `dep.owner`; `None` when
/// EC2 does not know the id (it forgets terminated instances after a while) or the
/// instance is another owner's, which for this owner is the same as gone.
pub(crate) async fn owned_instance(
    provider: &Ec2Provider,
    dep: &DeploymentRef,
    op: Op,
) -> Result<Option<Instance>, ProviderError> {
    let described = provider
        .client
        .describe_instances()
        .instance_ids(&dep.handle)
        .send()
        .await;
    let out = match described {
        Ok(out) => out,
        Err(e) => match from_sdk(op, e) {
            err if err.class == ErrorClass::NotFound => return Ok(None),
            err => return Err(err),
        },
    };
    let Some(instance) = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(dep.handle.as_str()))
    else {
        return Ok(None);
    };
    if !list::belongs_to(instance, dep.owner.as_ref()) {
        // A forged or stale reference (a drill's cleanup naming production's instance,
        // an id reused in records): not this owner's to look at or touch.
        tracing::debug!(provider = %provider.name, instance = %dep.handle, wanted = ?dep.owner, found = ?list::owner_of(instance), "instance is not this owner's; treated as gone");
        return Ok(None);
    }
    Ok(Some(instance.clone()))
}

async fn running(
    provider: &Ec2Provider,
    instance: &Instance,
) -> Result<DeploymentState, ProviderError> {
    let id = instance.instance_id().unwrap_or_default();
    let port = tag_value(instance, tags::PORT).and_then(|p| p.parse::<u16>().ok());
    let endpoint = endpoint_of(instance, provider.config.address, port);

    let status = provider
        .client
        .describe_instance_status()
        .instance_ids(id)
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| from_sdk(Op::Inspect, e))?;
    let checks: Vec<Option<&SummaryStatus>> = status
        .instance_statuses()
        .iter()
        .flat_map(|s| {
            [
                s.instance_status().and_then(|x| x.status()),
                s.system_status().and_then(|x| x.status()),
            ]
        })
        .collect();
    if checks.contains(&Some(&SummaryStatus::Impaired)) {
        return Ok(DeploymentState::Failed {
            reason: "EC2 status checks report the instance impaired".into(),
        });
    }
    let checks_ok = !checks.is_empty()
        && checks
            .iter()
            .all(|c| matches!(c, Some(SummaryStatus::Ok | SummaryStatus::NotApplicable)));

    let health = tag_value(instance, tags::HEALTH).and_then(deploy::parse_health_tag);
    match (health, endpoint) {
        (Some(check), Some(endpoint)) => {
            if check_health(
                &provider.http,
                &endpoint,
                &check,
                provider.config.health_timeout(),
            )
            .await
            {
                Ok(DeploymentState::Healthy { endpoint })
            } else {
                // Unreachable from here is not proof of failure (lifeboat may sit outside
                // the VPC): it stays running, and the controller's deadline decides.
                Ok(DeploymentState::Running {
                    endpoint: Some(endpoint),
                })
            }
        }
        (Some(_), None) => Ok(DeploymentState::Running { endpoint: None }),
        (None, endpoint) if checks_ok => {
            // Without a check of its own, EC2's status checks are the health signal. A
            // workload that serves no port reports port 0.
            let fallback = || {
                address_of(instance, provider.config.address).map(|host| Endpoint { host, port: 0 })
            };
            match endpoint.or_else(fallback) {
                Some(endpoint) => Ok(DeploymentState::Healthy { endpoint }),
                None => Ok(DeploymentState::Running { endpoint: None }),
            }
        }
        (None, endpoint) => Ok(DeploymentState::Running { endpoint }),
    }
}

/// Runs a workload health check against `endpoint`: a TCP connect, or an HTTP GET that
/// must answer 2xx, each within `timeout`.
pub(crate) async fn check_health(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    check: &HealthCheck,
    timeout: Duration,
) -> bool {
    match check {
        HealthCheck::Tcp => {
            let addr = (endpoint.host.as_str(), endpoint.port);
            matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            )
        }
        HealthCheck::Http { path } => {
            let slash = if path.starts_with('/') { "" } else { "/" };
            let url = format!("http://{endpoint}{slash}{path}");
            matches!(
                http.get(url).timeout(timeout).send().await,
                Ok(response) if response.status().is_success()
            )
        }
    }
}

/// The address the workload is reached at, as configured (private, or public with the
/// private one as fallback).
pub(crate) fn address_of(instance: &Instance, kind: AddressKind) -> Option<String> {
    let private = instance.private_ip_address().filter(|a| !a.is_empty());
    let public = instance.public_ip_address().filter(|a| !a.is_empty());
    match kind {
        AddressKind::Private => private,
        AddressKind::Public => public.or(private),
    }
    .map(str::to_owned)
}

/// The workload endpoint of an instance, when it has an address and the workload a port.
pub(crate) fn endpoint_of(
    instance: &Instance,
    kind: AddressKind,
    port: Option<u16>,
) -> Option<Endpoint> {
    Some(Endpoint {
        host: address_of(instance, kind)?,
        port: port?,
    })
}

pub(crate) fn tag_value<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn state_reason(instance: &Instance) -> String {
    instance
        .state_reason()
        .and_then(|r| r.message().or(r.code()))
        .unwrap_or("no reason given")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(private: Option<&str>, public: Option<&str>) -> Instance {
        Instance::builder()
            .set_private_ip_address(private.map(Into::into))
            .set_public_ip_address(public.map(Into::into))
            .build()
    }

    #[test]
    fn address_follows_the_configured_kind() {
        let both = instance(Some("10.0.0.5"), Some("203.0.113.9"));
        assert_eq!(
            address_of(&both, AddressKind::Private).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            address_of(&both, AddressKind::Public).as_deref(),
            Some("203.0.113.9")
        );
        let private_only = instance(Some("10.0.0.5"), None);
        assert_eq!(
            address_of(&private_only, AddressKind::Public).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(address_of(&instance(None, None), AddressKind::Public), None);
        assert_eq!(endpoint_of(&both, AddressKind::Private, None), None);
        assert_eq!(
            endpoint_of(&both, AddressKind::Private, Some(8080)),
            Some(Endpoint {
                host: "10.0.0.5".into(),
                port: 8080
            })
        );
    }

    /// A real HTTP server on loopback: 200 on /healthz, 503 elsewhere.
    async fn http_server() -> (Endpoint, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let status = if request.starts_with("GET /healthz ") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (
            Endpoint {
                host: "127.0.0.1".into(),
                port,
            },
            task,
        )
    }

    #[tokio::test]
    async fn health_checks_pass_and_fail_for_real() {
        let http = reqwest::Client::new();
        let timeout = Duration::from_secs(5);
        let (endpoint, server) = http_server().await;
        let healthz = HealthCheck::Http {
            path: "/healthz".into(),
        };
        let other = HealthCheck::Http {
            path: "broken".into(),
        };
        assert!(check_health(&http, &endpoint, &healthz, timeout).await);
        assert!(!check_health(&http, &endpoint, &other, timeout).await);
        assert!(check_health(&http, &endpoint, &HealthCheck::Tcp, timeout).await);
        server.abort();
        let _ = server.await;

        // Nothing listens on a port that was just freed.
        let closed = Endpoint {
            host: "127.0.0.1".into(),
            port: lifeboat_testkit::free_port(),
        };
        assert!(!check_health(&http, &closed, &HealthCheck::Tcp, timeout).await);
        assert!(!check_health(&http, &closed, &healthz, timeout).await);
    }
}
