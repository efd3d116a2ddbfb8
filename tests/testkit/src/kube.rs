//! A real Kubernetes API server on loopback: `etcd` and `kube-apiserver`, built from the
//! Go module registry by `tests/peers/install.d/kube-apiserver.sh` (the versions are
//! pinned in `tests/peers/kube/go.mod`), the way controller-runtime's envtest runs its
//! tests. No kubelet and no controller-manager run: a Deployment never rolls out on its
//! own and nothing collects what was deleted with foreground propagation, so a test
//! starts [`Controllers`], which writes what the Deployment controller, the kubelets and
//! the garbage collector would write. (The real kube-controller-manager would create
//! ReplicaSets and Pods that never run without nodes, and overwrite the Deployment
//! status with "unavailable": standing in for it is what makes rollouts testable.)
//!
//! Authentication: an admin token (group `system:masters`) from a static token file, and
//! service-account tokens ([`KubeApiServer::service_account`]) whose permissions come
//! from a Role the test writes, and which stop working when the account is deleted
//! ([`KubeApiServer::revoke`]): the real server's 401 and 403, not an emulation.
//!
//! Starting one takes a few seconds, so tests of one binary share one
//! ([`KubeApiServer::shared`]) and keep apart by namespace; it is stopped when the test
//! process exits, however it exits. A test that needs a cluster of its own (one it can
//! stop, or cluster-scoped objects) starts one with [`KubeApiServer::start`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{Peer, free_port, repo_root};

/// The token of the API server's administrator (group `system:masters`).
const ADMIN_TOKEN: &str = "lifeboat-test-admin";

/// Where `tests/peers/install.d/kube-apiserver.sh` links the binaries it built.
fn bin(name: &str) -> PathBuf {
    repo_root().join(".peers/kube/bin").join(name)
}

/// kubectl of the same Kubernetes version as the API server.
pub fn kubectl() -> PathBuf {
    bin("kubectl")
}

/// Why the Kubernetes tests cannot run here, when they cannot: the binaries are missing
/// and Go, which builds them, is not installed. With Go installed, missing binaries are an
/// error ([`KubeApiServer::start`] says how to build them), never a skip.
pub fn unavailable() -> Option<String> {
    if bin("kube-apiserver").exists() && bin("etcd").exists() {
        return None;
    }
    let go = Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!go).then(|| {
        "Go is not installed, so kube-apiserver and etcd could not be built: install Go 1.26 \
         or newer (Debian: golang-go from bookworm-backports, or go.dev/dl) and run \
         tests/peers/install.sh"
            .to_owned()
    })
}

/// Skips the calling test (returns from it) when [`unavailable`] says the Kubernetes
/// peers cannot exist on this machine, with the reason on stderr.
#[macro_export]
macro_rules! require_kube {
    () => {
        if let Some(why) = $crate::kube::unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A handle on a running API server and its etcd. Clones share them; they stop when the
/// last clone is dropped (or, for [`KubeApiServer::shared`], when the test process exits).
#[derive(Clone)]
pub struct KubeApiServer {
    port: u16,
    ca: PathBuf,
    dir: PathBuf,
    http: reqwest::Client,
    /// etcd, then kube-apiserver.
    peers: Arc<(Peer, Peer)>,
}

/// What the Kubernetes adapter needs in the namespace it deploys image workloads to:
/// Deployments, Services, their pods and the proxy it checks health through.
pub const IMAGE_WORKLOAD_RULES: &[Rule] = &[
    Rule {
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
        group: "apps",
        resources: &["deployments"],
    },
    Rule {
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
        group: "",
        resources: &["services", "pods", "services/proxy"],
    },
];

/// One rule of a Role: verbs on resources of an API group (`""` is the core group).
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    /// `"get"`, `"list"`, `"patch"`, ... or `"*"`.
    pub verbs: &'a [&'a str],
    /// The API group: `""` (core), `"apps"`, ...
    pub group: &'a str,
    /// Resources of the group: `"deployments"`, `"services/proxy"`, ... or `"*"`.
    pub resources: &'a [&'a str],
}

impl KubeApiServer {
    /// Starts etcd and kube-apiserver on free loopback ports with fresh data, and waits
    /// until the API server is ready (`/readyz`) and its built-in roles exist.
    pub fn start() -> Result<KubeApiServer> {
        Self::start_with(false)
    }

    /// The API server shared by the tests of this process, started on first use. Tests
    /// keep apart with namespaces of their own.
    pub fn shared() -> Result<KubeApiServer> {
        Self::shared_as("default")
    }

    /// A shared API server of its own for each `name` ("a", "b": two clusters for the
    /// tests that move workloads between clusters), started on first use.
    pub fn shared_as(name: &str) -> Result<KubeApiServer> {
        type Servers =
            Mutex<HashMap<String, Arc<OnceLock<std::result::Result<KubeApiServer, String>>>>>;
        static SHARED: OnceLock<Servers> = OnceLock::new();
        let slot = SHARED
            .get_or_init(Default::default)
            .lock()
            .expect("not poisoned")
            .entry(name.to_owned())
            .or_default()
            .clone();
        // Started outside the map's lock, so two names start side by side.
        slot.get_or_init(|| Self::start_with(true).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow::anyhow!("starting the shared kube-apiserver {name:?}: {e}"))
    }

    fn start_with(shared: bool) -> Result<KubeApiServer> {
        for name in ["etcd", "kube-apiserver"] {
            if !bin(name).exists() {
                bail!(
                    "{} is missing: run tests/peers/install.sh (it builds kube-apiserver and \
                     etcd with Go)",
                    bin(name).display()
                );
            }
        }
        // A port picked free can be taken by another test's server before etcd binds
        // it: etcd then exits at once, and a second try on new ports is the cure.
        let (etcd, etcd_port) = on_fresh_ports("etcd", || {
            let etcd_dir = Peer::prepare_dir()?;
            let etcd_port = free_port();
            let peer_port = free_port();
            let mut etcd = Command::new(bin("etcd"));
            etcd.arg("--name=lifeboat-test")
                .arg(format!(
                    "--data-dir={}",
                    etcd_dir.path().join("data").display()
                ))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"))
                .arg(format!(
                    "--advertise-client-urls=http://127.0.0.1:{etcd_port}"
                ))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"
                ))
                .arg(format!(
                    "--initial-cluster=lifeboat-test=http://127.0.0.1:{peer_port}"
                ))
                .arg("--listen-metrics-urls=")
                // A test cluster's data does not outlive it: fsync buys nothing here.
                .arg("--unsafe-no-fsync")
                .arg("--log-level=warn");
            let mut etcd = start_peer("etcd", etcd_dir, etcd, shared)?;
            etcd.wait_for_tcp(
                SocketAddr::from(([127, 0, 0, 1], etcd_port)),
                Duration::from_secs(60),
            )?;
            Ok((etcd, etcd_port))
        })?;

        let dir = Peer::prepare_dir()?;
        let path = dir.path().to_owned();
        std::fs::write(
            path.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,system:masters\n"),
        )?;
        service_account_keys(&path)?;
        let port = free_port();
        let mut apiserver = Command::new(bin("kube-apiserver"));
        apiserver
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg(format!("--cert-dir={}", path.join("certs").display()))
            .arg(format!(
                "--token-auth-file={}",
                path.join("tokens.csv").display()
            ))
            .arg("--authorization-mode=RBAC")
            .arg(format!(
                "--service-account-key-file={}",
                path.join("sa.pub").display()
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                path.join("sa.key").display()
            ))
            .arg(format!("--service-account-issuer=https://127.0.0.1:{port}"))
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            // The `kubernetes` Service's endpoint would be this loopback address, which a
            // real cluster may not advertise.
            .arg("--endpoint-reconciler-type=none")
            // Pods never run here; the admission plugins that wait for a service
            // account's token controller would only refuse them.
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--v=0");
        let mut apiserver = start_peer("kube-apiserver", dir, apiserver, shared)?;
        let ca = path.join("certs/apiserver.crt");
        let http = reqwest::Client::builder()
            // The harness talking to its own child on loopback; the clients under test
            // verify the server against `ca` (see `kubeconfig`).
            .tls_danger_accept_invalid_certs(true)
            // Each request runs on a runtime of its own (see `blocking`): a pooled
            // connection would outlive the runtime that drives it.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the test's HTTP client")?;
        let url = format!("https://127.0.0.1:{port}");
        apiserver.wait_until(Duration::from_secs(120), || {
            blocking(async {
                let ready = http
                    .get(format!("{url}/readyz"))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                // The RBAC bootstrap roles appear just after readiness on a fresh etcd.
                ready
                    && http
                        .get(format!(
                            "{url}/apis/rbac.authorization.k8s.io/v1/clusterroles/admin"
                        ))
                        .bearer_auth(ADMIN_TOKEN)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
            })
        })?;
        Ok(KubeApiServer {
            port,
            ca,
            dir: path,
            http,
            peers: Arc::new((etcd, apiserver)),
        })
    }

    /// The API server URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The loopback address the API server listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The administrator's bearer token.
    pub fn admin_token(&self) -> &str {
        ADMIN_TOKEN
    }

    /// The certificate authority that signed the API server's serving certificate.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// Writes a kubeconfig for this server (namespace `namespace`, bearer `token`,
    /// verifying the server against [`KubeApiServer::ca`]) and returns its path.
    pub fn kubeconfig(&self, namespace: &str, token: &str) -> Result<PathBuf> {
        self.kubeconfig_for(&self.url(), namespace, token)
    }

    /// A kubeconfig like [`KubeApiServer::kubeconfig`] whose server is `url`: a proxy in
    /// front of this server (which must pass TLS through, or terminate it with a
    /// certificate `ca` accepts).
    pub fn kubeconfig_for(&self, url: &str, namespace: &str, token: &str) -> Result<PathBuf> {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters:\n- name: test\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {namespace}\n\
             users:\n- name: test\n  user:\n    token: {token}\n",
            ca = self.ca.display()
        );
        let path = self.dir.join(format!("kubeconfig-{}", free_port()));
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Writes `text` into a file of this server's folder (a manifest for kubectl, say)
    /// and returns its path.
    pub fn dir_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("the server's folder is writable");
        path
    }

    /// An administrator's kubeconfig in `namespace`.
    pub fn admin_kubeconfig(&self, namespace: &str) -> Result<PathBuf> {
        self.kubeconfig(namespace, ADMIN_TOKEN)
    }

    /// Creates `namespace` if it does not exist.
    pub fn namespace(&self, namespace: &str) -> Result<()> {
        self.apply(
            &format!("/api/v1/namespaces/{namespace}"),
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
    }

    /// Creates (or updates) the service account `name` in `namespace`, allowed exactly
    /// `rules` there (a Role and RoleBinding of the same name), and returns a fresh token
    /// for it. With `cluster_rules`, a ClusterRole and ClusterRoleBinding allow those
    /// cluster-wide too (nodes, CRDs).
    pub fn service_account(
        &self,
        namespace: &str,
        name: &str,
        rules: &[Rule],
        cluster_rules: &[Rule],
    ) -> Result<String> {
        self.namespace(namespace)?;
        self.apply(
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace}}),
        )?;
        self.set_rules(namespace, name, rules)?;
        let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
        self.apply(
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}"),
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": subject}),
        )?;
        if !cluster_rules.is_empty() {
            let cluster_name = format!("{namespace}-{name}");
            self.apply(
                &format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{cluster_name}"),
                &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": {"name": cluster_name}, "rules": rules_json(cluster_rules)}),
            )?;
            self.apply(
                &format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{cluster_name}"),
                &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": cluster_name},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
                        "subjects": subject}),
            )?;
        }
        let (status, body) = self.request(
            "POST",
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"),
            Some(
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 7200}}),
            ),
        )?;
        if status != 201 {
            bail!("requesting a token for {namespace}/{name} answered {status}: {body}");
        }
        let answer: Value = serde_json::from_str(&body)?;
        let token = answer["status"]["token"]
            .as_str()
            .context("a TokenRequest without status.token")?
            .to_owned();
        // RBAC is read from the server's caches: wait until the binding is in force.
        self.wait_for(&format!("{namespace}/{name}'s permissions"), || {
            Ok(rules.is_empty() || self.review(namespace, &token, rules[0])?)
        })?;
        Ok(token)
    }

    /// Replaces what the service account `name` may do in `namespace` (its Role), and
    /// waits until the server's authoriser has seen the change.
    pub fn set_rules(&self, namespace: &str, name: &str, rules: &[Rule]) -> Result<()> {
        let path =
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}");
        let before = self.get(&path).ok();
        self.apply(
            &path,
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": name, "namespace": namespace},
                    "rules": rules_json(rules)}),
        )?;
        if before.is_some() {
            // The authoriser's informer lags the write by a few milliseconds.
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(())
    }

    /// Deletes the service account `name`: its tokens are refused (401) from now on.
    /// Returns once the server refuses `token`.
    pub fn revoke(&self, namespace: &str, name: &str, token: &str) -> Result<()> {
        let (status, body) = self.request(
            "DELETE",
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
            None,
        )?;
        if status >= 300 {
            bail!("deleting the service account {namespace}/{name} answered {status}: {body}");
        }
        self.wait_for(&format!("{namespace}/{name}'s token to be refused"), || {
            let status = blocking(async {
                self.http
                    .get(format!("{}/version", self.url()))
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })?;
            Ok(status == 401)
        })
    }

    /// Whether `token` may do `rule`'s first verb on its first resource in `namespace`,
    /// by the server's own SelfSubjectAccessReview.
    fn review(&self, namespace: &str, token: &str, rule: Rule) -> Result<bool> {
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": namespace, "verb": rule.verbs[0],
                     "group": rule.group, "resource": rule.resources[0]}}});
        let answer = blocking(async {
            self.http
                .post(format!(
                    "{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    self.url()
                ))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?
                .json::<Value>()
                .await
        })?;
        Ok(answer["status"]["allowed"].as_bool() == Some(true))
    }

    /// Server-side applies `object` at `path` as the administrator (field manager
    /// `lifeboat-test`, forcing conflicts: the test is the cluster's owner).
    pub fn apply(&self, path: &str, object: &Value) -> Result<()> {
        let (status, body) = self.apply_as("lifeboat-test", true, path, object)?;
        if status >= 300 {
            bail!("applying {path} answered {status}: {body}");
        }
        Ok(())
    }

    /// Server-side applies `object` at `path` as the administrator under the field
    /// manager `manager`, forcing conflicts or not, and returns the server's answer (409
    /// when another manager owns a field it changes and `force` is false).
    pub fn apply_as(
        &self,
        manager: &str,
        force: bool,
        path: &str,
        object: &Value,
    ) -> Result<(u16, String)> {
        self.send(
            "PATCH",
            &format!("{path}?fieldManager={manager}&force={force}"),
            Some(("application/apply-patch+yaml", object.to_string())),
        )
    }

    /// GETs `path` as the administrator; an error unless it answers 200.
    pub fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = self.request("GET", path, None)?;
        if status != 200 {
            bail!("GET {path} answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET {path} answered no JSON"))
    }

    /// Writes `status` (a JSON object) into an object's status subresource with a merge
    /// patch, as its controller would. `path` is the object's API path, e.g.
    /// `/apis/apps/v1/namespaces/prod/deployments/api-g1`.
    pub fn set_status(&self, path: &str, status: &Value) -> Result<()> {
        let (code, text) = self.send(
            "PATCH",
            &format!("{path}/status"),
            Some((
                "application/merge-patch+json",
                json!({"status": status}).to_string(),
            )),
        )?;
        if code != 200 {
            bail!("PATCH {path}/status answered {code}: {text}");
        }
        Ok(())
    }

    /// One request as the administrator, returning the status code and body: for setting
    /// up state and checking it behind the client's back.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, String)> {
        self.send(
            method,
            path,
            body.map(|b| ("application/json", b.to_string())),
        )
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Result<(u16, String)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let url = format!("{}{path}", self.url());
        blocking(async {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(ADMIN_TOKEN);
            if let Some((content_type, text)) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(text);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("{method} {url}"))?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        })
    }

    /// Polls `check` until it is true (30 s at most).
    pub fn wait_for(&self, what: &str, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
        let start = Instant::now();
        loop {
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) if start.elapsed() < Duration::from_secs(30) => {}
                Ok(false) => bail!("waited 30 s for {what}"),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(e.context(format!("waiting for {what}")));
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The API server's log so far.
    pub fn log_text(&self) -> String {
        self.peers.1.log_text()
    }
}

/// Starts a peer; a shared one is wrapped so that it stops when this process exits, since
/// statics are never dropped: the wrapper waits on a pipe whose write end this process
/// holds until it exits, then stops its child.
fn start_peer(name: &str, dir: tempfile::TempDir, command: Command, shared: bool) -> Result<Peer> {
    if !shared {
        return Peer::start(name, dir, command);
    }
    let mut wrapper = Command::new("sh");
    wrapper
        .arg("-c")
        .arg(r#""$@" & child=$!; trap 'kill $child 2>/dev/null' EXIT; read -r _; kill $child; wait $child"#)
        .arg("sh")
        .arg(command.get_program())
        .args(command.get_args());
    Peer::start_watched(name, dir, wrapper)
}

/// Signing keys for service-account tokens (P-256, made with `openssl`).
fn service_account_keys(dir: &Path) -> Result<()> {
    let key = dir.join("sa.key");
    let public = dir.join("sa.pub");
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .context("running openssl (apt-get install openssl; tests/peers/install.sh does)")?;
        if !out.status.success() {
            bail!(
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let key_s = key.to_string_lossy().into_owned();
    let public_s = public.to_string_lossy().into_owned();
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &key_s,
    ])?;
    run(&["ec", "-in", &key_s, "-pubout", "-out", &public_s])
}

fn rules_json(rules: &[Rule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|r| json!({"apiGroups": [r.group], "resources": r.resources, "verbs": r.verbs}))
            .collect(),
    )
}

/// Runs `future` to completion on a runtime of its own, in a thread of its own, so that
/// the fixture's blocking methods work from synchronous and asynchronous tests alike.
fn blocking<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds")
                    .block_on(future)
            })
            .join()
            .expect("the fixture's request thread does not panic")
    })
}

/// Stands in for the controllers this API server runs without, in the namespaces it is
/// given, every 200 ms until dropped: the Deployment controller and the kubelets (every
/// Deployment whose status lags its spec is marked rolled out and available) and the
/// garbage collector (an object deleted with foreground propagation, which has no
/// dependents here, loses its `foregroundDeletion` finalizer and goes). Deployments a
/// test wants to keep unavailable live in a namespace it is not given.
pub struct Controllers {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The kinds of object the garbage collector stand-in finalizes, by collection path.
const COLLECTED: [&str; 4] = [
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/api/v1/namespaces/{ns}/services",
    "/api/v1/namespaces/{ns}/configmaps",
    "/apis/batch/v1/namespaces/{ns}/jobs",
];

impl Controllers {
    /// Starts standing in for the controllers in `namespaces` of `servers`.
    pub fn start(servers: &[&KubeApiServer], namespaces: &[&str]) -> Controllers {
        let stop = Arc::new(AtomicBool::new(false));
        let servers: Vec<KubeApiServer> = servers.iter().map(|s| (*s).clone()).collect();
        let namespaces: Vec<String> = namespaces.iter().map(|n| (*n).to_owned()).collect();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for server in &servers {
                        for ns in &namespaces {
                            // An object that went meanwhile refuses the write; the next
                            // round no longer sees it.
                            let _ = server.roll_out(ns);
                            let _ = server.collect_garbage(ns);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        Controllers {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl KubeApiServer {
    /// Marks every Deployment of `namespace` whose status lags its spec rolled out and
    /// available, as the Deployment controller and the kubelets would once its pods ran.
    pub fn roll_out(&self, namespace: &str) -> Result<()> {
        let list = self.get(&format!("/apis/apps/v1/namespaces/{namespace}/deployments"))?;
        for deployment in list["items"].as_array().into_iter().flatten() {
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
            let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
            let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
            let status = &deployment["status"];
            if deployment["metadata"]["deletionTimestamp"].is_string()
                || (status["observedGeneration"].as_i64() == Some(generation)
                    && status["availableReplicas"].as_i64() == Some(replicas))
            {
                continue;
            }
            self.set_status(
                &format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
                &available(generation, replicas),
            )?;
        }
        Ok(())
    }

    /// Lets the objects of `namespace` deleted with foreground propagation go, as the
    /// garbage collector does once their dependents are gone (they have none here).
    pub fn collect_garbage(&self, namespace: &str) -> Result<()> {
        for collection in COLLECTED {
            let collection = collection.replace("{ns}", namespace);
            let list = self.get(&collection)?;
            for object in list["items"].as_array().into_iter().flatten() {
                let metadata = &object["metadata"];
                let finalizers = metadata["finalizers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if !metadata["deletionTimestamp"].is_string()
                    || !finalizers.iter().any(|f| f == "foregroundDeletion")
                {
                    continue;
                }
                let kept: Vec<Value> = finalizers
                    .into_iter()
                    .filter(|f| f != "foregroundDeletion")
                    .collect();
                let name = metadata["name"].as_str().unwrap_or_default();
                self.send(
                    "PATCH",
                    &format!("{collection}/{name}"),
                    Some((
                        "application/merge-patch+json",
                        json!({"metadata": {"finalizers": kept,
                                            "resourceVersion": metadata["resourceVersion"]}})
                        .to_string(),
                    )),
                )?;
            }
        }
        Ok(())
    }
}
/// A Deployment status saying `replicas` pods of `generation` are up to date and
/// available.
pub fn available(generation: i64, replicas: i64) -> Value {
    let now = "2026-01-01T00:00:00Z";
    json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "lastUpdateTime": now, "lastTransitionTime": now},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "lastUpdateTime": now, "lastTransitionTime": now},
        ],
    })
}

/// Runs `start` (which picks its own free ports) up to three times: a port found free
/// may be bound by another test's server before the peer binds it.
fn on_fresh_ports<T>(what: &str, mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..3 {
        match start() {
            Ok(started) => return Ok(started),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("three tries ran"))
        .with_context(|| format!("{what} did not start in three tries"))
}
