//! What a killed pyctl leaves in its tier's `.dirs/` and `.parked/`: a tree it had claimed
//! (`.claim-PID-N`, by a restore) or was still writing (`.tmp-PID-NAME`, by a background
//! deletion parking a tree). Each is named by the process that made it; once no process has that
//! id, it goes the way of any other trash: renamed to a `.trash-*` folder of the tier, which
//! the caller deletes in the background.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::park::PARKED_DIR;
use super::vouch::POOL_DIR;

/// Moves the leftovers of dead processes out of `tier_root`'s `.dirs/` and `.parked/`; returns
/// the `.trash-*` folders they became.
pub fn sweep(tier_root: &Path) -> Vec<PathBuf> {
    let mut moved = Vec::new();
    for (sub, label) in [(POOL_DIR, "dirs"), (PARKED_DIR, "parked")] {
        let Ok(read) = std::fs::read_dir(tier_root.join(sub)) else {
            continue;
        };
        for item in read.flatten() {
            let name = item.file_name();
            let name = name.to_string_lossy();
            if leftover_pid(&name).is_none_or(alive) {
                continue;
            }
            // A name of its own kind: never one the deletion takes for an undo's `-files`.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let aside = tier_root.join(format!(
                ".trash-{label}-{}-{nanos}-{}",
                std::process::id(),
                moved.len()
            ));
            if std::fs::rename(item.path(), &aside).is_ok() {
                moved.push(aside);
            }
        }
    }
    moved
}

/// The process id a leftover's name carries (`.claim-PID-N`, `.tmp-PID-NAME`).
fn leftover_pid(name: &str) -> Option<i32> {
    let rest = name
        .strip_prefix(".claim-")
        .or_else(|| name.strip_prefix(".tmp-"))?;
    rest.split('-').next()?.parse().ok().filter(|pid| *pid > 0)
}

/// Whether a process has that id (another account's counts: the signal is refused, not
/// unheard of).
fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_processs_claims_and_temp_trees_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let made = [
            format!("{POOL_DIR}/.claim-{dead}-0/pkg/sub"),
            format!("{PARKED_DIR}/.tmp-{dead}-alpha-1.0/lib"),
            format!("{PARKED_DIR}/.claim-{dead}-3"),
            format!("{POOL_DIR}/.claim-{me}-1"),
            format!("{POOL_DIR}/pkg"),
            format!("{PARKED_DIR}/alpha-1.0"),
            format!("{POOL_DIR}/.claim-x-1"),
        ];
        for d in &made {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let moved = sweep(root);
        assert_eq!(moved.len(), 3, "{moved:?}");
        for (i, d) in made.iter().enumerate() {
            assert_eq!(root.join(d).exists(), i >= 3, "{d}");
        }
        for m in &moved {
            let name = m.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(".trash-") && m.parent() == Some(root),
                "{name}"
            );
        }
        assert!(moved.iter().any(|m| m.join("pkg/sub").is_dir()));
    }
}
