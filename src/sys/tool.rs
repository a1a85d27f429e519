//! Running the distro's own tools safely.

use std::path::Path;
use std::process::Command;

/// Where the distro tools pyctl runs (`dpkg-deb`, `rpm`, `pacman`, `dpkg-query`, `rm`) are
/// found, and the only `PATH` they get: fixed system folders, never the caller's `PATH`, so that
/// root (a package manager's hook, or `sudo -E` keeping a user's `PATH`) runs no program from a
/// user-writable folder, nor do the tools' own children (`dpkg-deb` runs `tar`).
pub const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A distro tool by its absolute path in `SYSTEM_PATH`, with a cleared environment holding only
/// that `PATH` and `LC_ALL=C` (its output is parsed). A tool that is not there fails to spawn.
pub fn system_tool(name: &str) -> Command {
    let program = std::env::split_paths(SYSTEM_PATH)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/bin").join(name));
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", SYSTEM_PATH).env("LC_ALL", "C");
    cmd
}
