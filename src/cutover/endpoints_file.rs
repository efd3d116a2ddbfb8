//! The endpoints-file cutover: a JSON object `{"public-name": "host:port", ...}` that
//! clients read to find a workload. For local use and the quickstart, where there is no
//! DNS server to update.
//!
//! Every switch replaces the whole file atomically (a temporary file in the same
//! folder, fsync, rename, fsync of the folder), so a reader never sees half a file and
//! a crash leaves either the old map or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use lifeboat_provider::{Endpoint, ErrorClass};

use super::{Cutover, CutoverError, CutoverRequest, Resolved};

/// The endpoints-file backend. Switches within one process are serialised by a lock,
/// so concurrent cutovers of different workloads never lose each other's update; one
/// controller writes the file at a time (the store's lock ensures that), any number of
/// clients may read it.
///
/// Switches that arrive while the file is being written are batched: whoever takes
/// the lock next applies every switch waiting at that moment to one read of the file
/// and replaces it once (one fsync of the file and of its folder for all of them), then
/// answers each. A switch is answered only after the replace that holds it is durable.
///
/// The map last written is kept, with the identity of the file it wrote, so a batch
/// reads the file again only when someone else replaced or changed it: at a fleet of
/// thousands, parsing the whole file for every batch was most of an evacuation's time.
#[derive(Debug)]
pub struct EndpointsFile {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
    waiting: std::sync::Mutex<Vec<Waiting>>,
    written: std::sync::Mutex<Option<Written>>,
}

/// The map in the file as this backend last wrote (or read) it.
#[derive(Debug)]
struct Written {
    file: FileId,
    map: BTreeMap<String, Endpoint>,
}

/// What tells one version of the file from another: a replace makes a new inode, an
/// edit in place changes the size or the modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileId {
    /// The file's identity now; `None` when it does not exist (or cannot be looked at,
    /// which the read then reports).
    fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// A switch waiting for the next replace of the file, and where its answer goes.
type Waiting = (
    CutoverRequest,
    tokio::sync::oneshot::Sender<Result<(), CutoverError>>,
);

impl EndpointsFile {
    /// A backend over `path` (created on the first switch).
    pub fn new(path: PathBuf) -> Self {
        EndpointsFile {
            path,
            lock: tokio::sync::Mutex::new(()),
            waiting: std::sync::Mutex::new(Vec::new()),
            written: std::sync::Mutex::new(None),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads an endpoints file the way a client does. A missing file is an empty map
/// (nothing was cut over yet); a malformed one is an error naming the file.
pub fn read(path: &Path) -> Result<BTreeMap<String, Endpoint>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let raw: BTreeMap<String, String> = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: expected a JSON object of \"name\": \"host:port\"",
            path.display()
        )
    })?;
    raw.into_iter()
        .map(|(name, addr)| {
            let endpoint =
                parse_endpoint(&addr).with_context(|| format!("{}: {name}", path.display()))?;
            Ok((name, endpoint))
        })
        .collect()
}

/// Parses `host:port` or `[v6-address]:port`. Port 0 is the contract's "serves no
/// port" (a worker with nothing to connect to still has a host), so every endpoint
/// lifeboat writes reads back.
pub fn parse_endpoint(text: &str) -> Result<Endpoint> {
    let Some((host, port)) = text.rsplit_once(':') else {
        bail!("{text:?} is not host:port");
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .with_context(|| format!("{text:?}: unclosed '['"))?,
        None if host.contains(':') => bail!("{text:?}: write an IPv6 address as [addr]:port"),
        None => host,
    };
    if host.is_empty() {
        bail!("{text:?} has no host");
    }
    let port = port
        .parse::<u16>()
        .ok()
        .with_context(|| format!("{text:?}: the port must be 0-65535"))?;
    Ok(Endpoint {
        host: host.to_owned(),
        port,
    })
}

/// Replaces `path` with `map`, atomically and durably.
fn write(path: &Path, map: &BTreeMap<String, Endpoint>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut bytes = Vec::with_capacity(48 * map.len() + 4);
    serde::Serializer::collect_map(
        &mut serde_json::Serializer::pretty(&mut bytes),
        map.iter().map(|(name, endpoint)| (name, AsText(endpoint))),
    )?;
    bytes.push(b'\n');
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(&bytes)?;
    // Clients may run as other users; the file holds no secret.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// An endpoint written as its `host:port` text, without a string of its own.
struct AsText<'a>(&'a Endpoint);

impl serde::Serialize for AsText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// Applies `requests` in order to one read of `path` (or to `last`, the map this
/// backend last wrote, while the file is still the one it wrote) and replaces it once
/// when any changed it; each request's outcome, all failed when the replace failed, and
/// the map now in the file.
fn replace(
    path: &Path,
    requests: &[CutoverRequest],
    last: Option<Written>,
) -> (Vec<Result<(), CutoverError>>, Option<Written>) {
    let file = FileId::of(path);
    let mut map = match last {
        Some(last) if file.as_ref() == Some(&last.file) => last.map,
        _ => match read(path) {
            Ok(map) => map,
            Err(e) => {
                let e = CutoverError::from(e);
                return (requests.iter().map(|_| Err(e.clone())).collect(), None);
            }
        },
    };
    let mut changed = false;
    let mut outcomes: Vec<Result<(), CutoverError>> = (requests.iter())
        .map(|req| match apply(&mut map, req, path) {
            Ok(switched) => {
                changed |= switched;
                Ok(())
            }
            Err(e) => Err(CutoverError::from(e)),
        })
        .collect();
    if !changed {
        return (outcomes, file.map(|file| Written { file, map }));
    }
    if let Err(e) = write(path, &map) {
        let e = CutoverError::from(e);
        for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
            *outcome = Err(e.clone());
        }
        return (outcomes, None);
    }
    (outcomes, FileId::of(path).map(|file| Written { file, map }))
}

/// The switch itself, on plain data: points the name at its new endpoint in `map` and
/// says whether that changed it (`false`: it already pointed there), or refuses, leaving
/// `map` as it was, when the name no longer points where the controller believes. In
/// place: a batch of a whole fleet's switches must not copy the map once per switch.
fn apply(map: &mut BTreeMap<String, Endpoint>, req: &CutoverRequest, file: &Path) -> Result<bool> {
    let current = map.get(&req.public_name);
    if current == Some(&req.new) {
        return Ok(false);
    }
    if current != req.old.as_ref() {
        let shown = |e: Option<&Endpoint>| e.map_or("nothing".to_owned(), |e| e.to_string());
        return Err(CutoverError::changed(format!(
            "{}: {} points at {}, expected {}; refusing to overwrite a change made by \
             someone else (fix the file or the placement, then retry)",
            file.display(),
            req.public_name,
            shown(current),
            shown(req.old.as_ref()),
        ))
        .into());
    }
    map.insert(req.public_name.clone(), req.new.clone());
    Ok(true)
}

#[async_trait]
impl Cutover for EndpointsFile {
    async fn switch(&self, req: &CutoverRequest) -> Result<(), CutoverError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let waiting = |w: &std::sync::Mutex<Vec<Waiting>>| {
            std::mem::take(&mut *w.lock().unwrap_or_else(|p| p.into_inner()))
        };
        (self.waiting.lock().unwrap_or_else(|p| p.into_inner())).push((req.clone(), done));
        {
            let _guard = self.lock.lock().await;
            // Empty when the holder before us took this switch along in its batch.
            let batch = waiting(&self.waiting);
            if !batch.is_empty() {
                let path = self.path.clone();
                let (requests, answers): (Vec<CutoverRequest>, Vec<_>) = batch.into_iter().unzip();
                // Taken out under the writer's lock, so no other batch can want it now.
                let last = (self.written.lock().unwrap_or_else(|p| p.into_inner())).take();
                let outcomes = tokio::task::spawn_blocking(move || replace(&path, &requests, last))
                    .await
                    .map(|(outcomes, now)| {
                        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = now;
                        outcomes
                    })
                    .map_err(|e| {
                        CutoverError::new(
                            ErrorClass::Internal,
                            format!("the endpoints-file writer task failed: {e}"),
                        )
                    });
                for (i, answer) in answers.into_iter().enumerate() {
                    let outcome = match &outcomes {
                        Ok(outcomes) => outcomes[i].clone(),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = answer.send(outcome);
                }
            }
        }
        answer.await.map_err(|_| {
            CutoverError::new(
                ErrorClass::Internal,
                "the endpoints-file writer stopped before answering",
            )
        })?
    }

    async fn resolve(&self, public_name: &str) -> Result<Resolved> {
        // The file as this backend last wrote it answers while it is still that file:
        // one stat, not a parse of the whole map, for every move's check. Behind the
        // writer's lock, because a batch being written holds that map.
        let _writer = self.lock.lock().await;
        let cached = {
            let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            written
                .as_ref()
                .filter(|w| FileId::of(&self.path).as_ref() == Some(&w.file))
                .map(|w| w.map.get(public_name).cloned())
        };
        let endpoint = match cached {
            Some(endpoint) => endpoint,
            None => {
                let path = self.path.clone();
                let map = tokio::task::spawn_blocking(move || read(&path))
                    .await
                    .context("the endpoints-file reader task failed")??;
                map.get(public_name).cloned()
            }
        };
        Ok(Resolved {
            endpoint,
            ttl: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_provider::Generation;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn ep(port: u16) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn req(name: &str, old: Option<u16>, new: u16) -> CutoverRequest {
        CutoverRequest {
            workload: name.into(),
            public_name: format!("{name}.local"),
            old: old.map(ep),
            new: ep(new),
            generation: Generation(1),
        }
    }

    #[test]
    fn parses_endpoints() {
        assert_eq!(parse_endpoint("127.0.0.1:80").unwrap(), ep(80));
        let v6 = parse_endpoint("[::1]:8080").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8080));
        assert_eq!(v6.to_string(), "[::1]:8080");
        // A copy that serves no port is at port 0.
        assert_eq!(parse_endpoint("127.0.0.1:0").unwrap(), ep(0));
        for bad in ["", "host", "host:", ":80", "h:70000", "::1:80", "[::1:80"] {
            assert!(parse_endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_change_made_by_someone_else_is_seen_by_the_next_switch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("endpoints.json");
        let file = EndpointsFile::new(path.clone());
        file.switch(&req("db", None, 1000)).await.unwrap();
        // An operator points db elsewhere by hand, in place (same inode).
        std::fs::write(&path, "{\"db.local\": \"127.0.0.1:1999\"}\n").unwrap();
        let e = file.switch(&req("db", Some(1000), 2000)).await.unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:1999"), "{e}");
        file.switch(&req("db", Some(1999), 2000)).await.unwrap();
        assert_eq!(read(&path).unwrap()["db.local"], ep(2000));
    }

    #[tokio::test]
    async fn switches_check_the_old_endpoint_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/endpoints.json");
        let file = EndpointsFile::new(path.clone());
        assert_eq!(file.resolve("db.local").await.unwrap().endpoint, None);

        file.switch(&req("db", None, 1000)).await.unwrap();
        file.switch(&req("db", None, 1000)).await.unwrap();
        assert_eq!(
            file.resolve("db.local").await.unwrap().endpoint,
            Some(ep(1000))
        );

        // Expecting nothing there, or the wrong endpoint, is refused and changes nothing.
        let e = file.switch(&req("db", None, 2000)).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("points at 127.0.0.1:1000, expected nothing"),
            "{e}"
        );
        let e = file.switch(&req("db", Some(3000), 2000)).await.unwrap_err();
        assert!(e.to_string().contains("expected 127.0.0.1:3000"), "{e}");
        assert_eq!(e.class, lifeboat_provider::ErrorClass::InvalidRequest);

        file.switch(&req("db", Some(1000), 2000)).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\n  \"db.local\": \"127.0.0.1:2000\"\n}\n");
        // Only the file itself is left in the folder: no temporary files.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[tokio::test]
    async fn concurrent_switches_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(EndpointsFile::new(dir.path().join("e.json")));
        let tasks: Vec<_> = (0..20u16)
            .map(|i| {
                let file = file.clone();
                tokio::spawn(
                    async move { file.switch(&req(&format!("w{i}"), None, 5000 + i)).await },
                )
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let map = read(file.path()).unwrap();
        assert_eq!(map.len(), 20);
        assert_eq!(map["w7.local"], ep(5007));
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.json");
        std::fs::write(&path, "[1, 2]").unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.contains("e.json") && e.contains("JSON object"), "{e}");
        std::fs::write(&path, r#"{"api": "nowhere"}"#).unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.contains("api") && e.contains("host:port"), "{e}");
    }

    proptest! {
        #[test]
        fn endpoint_parsing_never_panics_and_round_trips(s in ".{0,40}", port in 0u16..) {
            let _ = parse_endpoint(&s);
            let e = Endpoint { host: "10.1.2.3".into(), port };
            prop_assert_eq!(parse_endpoint(&e.to_string()).unwrap(), e);
        }
    }
}
