//! Running the distro's own tools safely.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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

/// What a bounded command printed, whether or not it succeeded: a query for several packages
/// (`rpm -q A B`, `pacman -Ql A B`) lists those it knows and fails for the others.
#[derive(Debug)]
pub struct BoundedOutput {
    pub program: String,
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// As `run_bounded`, keeping stdout and stderr (each capped at `max_bytes`) on failure too.
/// Errors only when the program cannot start or outlives `limit` (then it is killed).
pub fn run_bounded_output(
    cmd: &mut Command,
    limit: Duration,
    max_bytes: usize,
) -> Result<BoundedOutput> {
    use std::io::Read;
    let program = Path::new(cmd.get_program()).display().to_string();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let capped_reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut pipe).take(max_bytes as u64).read_to_end(&mut buf);
            // The rest is drained so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            buf
        })
    };
    let stdout = capped_reader(Box::new(child.stdout.take().context("no stdout")?));
    let stderr = capped_reader(Box::new(child.stderr.take().context("no stderr")?));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{program} took longer than {} s; skipped",
                limit.as_secs_f32()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = |h: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    Ok(BoundedOutput {
        program,
        success: status.success(),
        status: status.to_string(),
        stdout: text(stdout),
        stderr: text(stderr),
    })
}
