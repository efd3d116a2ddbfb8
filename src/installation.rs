//! The installation id: who "we" are on every vendor, so lifeboat acts only on what it
//! owns.
//!
//! It comes from `installation:` in `lifeboat.yaml`, or else from the file
//! `STATE_DIR/installation`, generated once on first use and never changed. The file
//! is plain text outside the database so that a drill, `lifeboat status` and
//! `lifeboat drill --cleanup` can read it while a daemon holds the store's lock. A
//! drill's state lives below the daemon's (`STATE_DIR/drill`), and its owner is this
//! installation plus the drill's own id ([`drill_id`]).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use jiff::Timestamp;
use lifeboat_provider::Owner;

use crate::config::Config;

/// The file, inside the state folder, that keeps a generated installation id.
pub const FILE: &str = "installation";

/// The production owner of `config`'s installation: the configured id, or the one kept
/// in its state folder (generated and written there the first time).
pub fn owner(config: &Config) -> anyhow::Result<Owner> {
    Ok(Owner::installation(id(config)?))
}

/// The installation id of `config` (see the module docs).
pub fn id(config: &Config) -> anyhow::Result<String> {
    match &config.installation {
        Some(id) => Ok(id.clone()),
        None => kept_or_new(&config.state_dir),
    }
}

/// The id kept in `state_dir`, if one was kept; never writes.
pub fn kept(state_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = state_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            Owner::check_id(&id)
                .map_err(|why| anyhow::anyhow!("{}: installation id {why}", path.display()))?;
            Ok(Some(id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn kept_or_new(state_dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = kept(state_dir)? {
        return Ok(id);
    }
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating the state folder {}", state_dir.display()))?;
    let id = format!("lb-{:012x}", rand::random::<u64>() >> 16);
    let path = state_dir.join(FILE);
    // Written to a temporary file and linked into place, so two processes starting at
    // once agree on one id (the second link fails, and it reads the first's), and a
    // crash never leaves a half-written id.
    let tmp = state_dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    writeln!(file, "{id}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match kept(state_dir)? {
            Some(id) => Ok(id),
            None => bail!("{} vanished while it was being created", path.display()),
        },
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// Every owner whose copies the state folder `state_dir` may have made: the copies
/// from before owners existed (`None`), the installation kept there, and each drill
/// recorded below it. For a complete view of what this installation has anywhere
/// ("is anything left?"); the controller itself acts for one owner at a time.
pub fn known_owners(state_dir: &Path) -> anyhow::Result<Vec<Option<Owner>>> {
    let mut owners = vec![None];
    if let Some(id) = kept(state_dir)? {
        owners.push(Some(Owner::installation(id)));
    }
    let drills = state_dir.join(crate::drill::cleanup::STATE_SUBDIR);
    if drills.join(crate::store::DB_FILE).exists() {
        let store = crate::store::Store::open_read_only(&drills)?;
        owners.extend(store.drill_runs()?.into_iter().map(|r| Some(r.owner)));
    }
    Ok(owners)
}

/// A new drill id: the start time and a random suffix, label-safe (see
/// [`Owner::check_id`]), sortable by start.
pub fn drill_id(now: Timestamp) -> String {
    format!(
        "d{}-{:04x}",
        now.strftime("%Y%m%dt%H%M%S"),
        rand::random::<u16>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_id_is_kept_and_label_safe() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(kept(dir.path()).unwrap(), None);
        let first = kept_or_new(dir.path()).unwrap();
        Owner::check_id(&first).unwrap();
        assert_eq!(kept_or_new(dir.path()).unwrap(), first);
        assert_eq!(kept(dir.path()).unwrap(), Some(first));
    }

    #[test]
    fn a_damaged_id_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "Not An Id\n").unwrap();
        let e = kept_or_new(dir.path()).unwrap_err().to_string();
        assert!(e.contains("installation"), "{e}");
    }

    #[test]
    fn drill_ids_are_label_safe() {
        Owner::check_id(&drill_id(Timestamp::now())).unwrap();
    }
}
