//! Processes as the kernel sees them: is a recorded copy still alive and still ours,
//! which processes belong to its group, and signals to the whole group.
//!
//! A pid alone is not an identity (the kernel reuses numbers), so every check compares
//! the process start time from `/proc/PID/stat` with the one recorded at spawn time.

use std::io;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::state::Record;

/// The fields of `/proc/PID/stat` this provider needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Single-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Process group id.
    pub pgrp: u32,
    /// Start time, clock ticks after boot.
    pub start: u64,
}

impl Stat {
    /// A zombie or dead entry: exited, only waiting to be reaped.
    pub fn exited(self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted from the last
/// `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, pgrp field 5, starttime field 22 (1-based).
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(Stat { state, pgrp, start })
}

/// The stat of `pid`, or `None` when there is no such process.
pub fn stat(pid: u32) -> io::Result<Option<Stat>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A process reaped between the open and the read leaves nothing to read.
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => parse_stat(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unreadable /proc/{pid}/stat"),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH shows up when the process vanishes between open and read.
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The recorded leader process is running (not a zombie) and is the one that was
/// started, not a later process that got the same pid.
pub fn leader_alive(record: &Record) -> io::Result<bool> {
    Ok(stat(record.pid)?.is_some_and(|s| s.start == record.proc_start && !s.exited()))
}

/// Live (non-zombie) processes of the copy's process group: the leader and anything it
/// started that stayed in its group. Empty when the group id now belongs to someone
/// else (the leader's pid was reused by a process with another start time, which can
/// only happen once the whole old group is gone).
pub fn live_members(record: &Record) -> io::Result<Vec<u32>> {
    if let Some(leader) = stat(record.pid)?
        && leader.start != record.proc_start
    {
        return Ok(Vec::new());
    }
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid)?
            && s.pgrp == record.pid
            && !s.exited()
        {
            members.push(pid);
        }
    }
    Ok(members)
}

/// Sends `signal` to the copy's process group, if it still has live members. An
/// already-empty group is not an error.
pub fn signal_group(record: &Record, signal: Signal) -> io::Result<()> {
    if live_members(record)?.is_empty() {
        return Ok(());
    }
    let pgid = i32::try_from(record.pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "pid out of range"))?;
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_a_stat_line_with_an_awkward_command_name() {
        let line = "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 \
                    20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgrp: 1234,
                start: 987654
            })
        );
    }

    #[test]
    fn reads_this_very_process() {
        let me = stat(std::process::id()).unwrap().unwrap();
        assert!(!me.exited());
        assert!(me.start > 0);
        assert_eq!(stat(u32::MAX).unwrap(), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = parse_stat(&s);
        }
    }
}
