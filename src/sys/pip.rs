//! The one place that builds every pip command pyctl runs (the wrapper, the engine's fallback,
//! migrate, clean, `doctor --fix`): the interpreter, its flags, the environment.
//!
//! - pip runs as its console script does, never as `python -m pip`: `-m` puts the current
//!   folder first on `sys.path`, so a `pip.py` or `pip/` there would run as the caller. The
//!   launcher (`LAUNCHER`) drops that entry before importing pip, on every Python the tiers
//!   support (3.9 has no `-P`).
//! - For root, the interpreter runs with `-I` (no `PYTHON*` variable, no user site, no current
//!   folder) and the environment is built from an allow-list (`root_env`): nothing the caller's
//!   environment names (a program, an interpreter, a module path, a config file, a wheel or
//!   sdist source, a CA) reaches a pip that runs as root. SECURITY.md lists every variable.
//! - For everyone else the environment is theirs, as for the pip console script.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

use crate::context::Context;
use crate::sys::fsutil::root_controlled;

/// Set for the pip that pyctl runs: a pip started from inside it (a build backend calling `pip`
/// on PATH) goes straight to the venv, never waiting on the lock its parent holds.
pub const ACTIVE_ENV: &str = "PYCTL_ACTIVE";

/// What the pip console script does (`from pip._internal.cli.main import main`), with the
/// current folder that `-c` puts first on `sys.path` taken off before anything is imported.
/// No single quote inside: venv shims embed it in single quotes.
pub const LAUNCHER: &str = "import sys\n\
if sys.path[:1] == [\"\"]:\n    del sys.path[0]\n\
sys.argv[0] = \"pip\"\n\
from pip._internal.cli.main import main\n\
sys.exit(main())\n";

/// The PATH root's pip runs with when the caller's holds nothing root alone controls.
pub const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// pip settings that root's pip takes from the environment: each only changes how pip talks or
/// how hard it tries, never where it reads, writes or runs anything. Index, find-links, cert,
/// config-file and every other `PIP_*` setting come from root's own pip.conf or the command line.
const ROOT_PIP_VARS: &[&str] = &[
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_NO_COLOR",
    "PIP_NO_INPUT",
    "PIP_PROGRESS_BAR",
    "PIP_QUIET",
    "PIP_VERBOSE",
    "PIP_RETRIES",
    "PIP_TIMEOUT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_ROOT_USER_ACTION",
    "PIP_NO_WARN_SCRIPT_LOCATION",
    "PIP_NO_WARN_CONFLICTS",
    "PIP_YES",
];

/// Variables that only shape output or name a proxy (TLS still checks the index against root's
/// CAs): kept for root.
const ROOT_PLAIN_VARS: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "TERM",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "TZ",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SUDO_USER",
    "SUDO_UID",
    "SUDO_GID",
];

/// Variables naming CA files or folders: kept for root only when root alone controls the path
/// (a CA of the caller's would let the caller's proxy serve root any package).
const ROOT_CA_VARS: &[&str] = &["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"];

/// Which pip settings a pip that pyctl runs keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipFor {
    /// A tier's venv: `--user` off whatever `PIP_USER` or a pip.conf says. A tier is already
    /// its owner's own place; pip would refuse `--user` in a venv.
    Tier,
    /// Any other venv (a pass-through to the active or project venv), or `pip config` in a tier
    /// (which shows the user's settings as they are): pip's settings left as the caller has them.
    AnyVenv,
}

/// `<venv>/bin/python` running pip with `args` still to be added: the caller appends them. The
/// one builder of every pip command pyctl runs.
pub fn command(ctx: &Context, venv: &Path, pip_for: PipFor) -> Command {
    let mut cmd = Command::new(venv.join("bin/python"));
    if ctx.is_root() {
        cmd.arg("-I");
        cmd.env_clear();
        for (key, value) in root_env(ctx) {
            cmd.env(key, value);
        }
    }
    cmd.arg("-c").arg(LAUNCHER).env(ACTIVE_ENV, venv);
    if pip_for == PipFor::Tier {
        cmd.env("PIP_USER", "0");
    }
    cmd
}

/// The environment root's pip gets: the allow-lists above, root's own HOME and a PATH of
/// root-controlled folders. Everything else the caller's environment holds is dropped.
pub fn root_env(ctx: &Context) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for (key, value) in ctx.env() {
        let k = key.to_string_lossy();
        let keep = ROOT_PIP_VARS.contains(&k.as_ref())
            || ROOT_PLAIN_VARS.contains(&k.as_ref())
            || k.starts_with("LC_")
            || (ROOT_CA_VARS.contains(&k.as_ref()) && root_controlled(Path::new(value)));
        if keep {
            env.push((key.clone(), value.clone()));
        }
    }
    if let Some(home) = &ctx.home {
        env.push(("HOME".into(), home.clone().into_os_string()));
    }
    env.push(("PATH".into(), root_path(ctx.var("PATH"))));
    env.sort();
    env
}

/// The caller's PATH less every folder that someone other than root could change; the
/// standard folders when nothing is left.
pub fn root_path(path: Option<&OsStr>) -> OsString {
    let kept: Vec<_> = path
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|dir| dir.is_absolute() && dir.is_dir() && root_controlled(dir))
        .collect();
    if kept.is_empty() {
        return ROOT_PATH.into();
    }
    std::env::join_paths(kept).unwrap_or_else(|_| ROOT_PATH.into())
}

/// The caller's variables root's pip will not see, by name (for the one-line note).
pub fn dropped_for_root(ctx: &Context) -> Vec<String> {
    let kept: Vec<OsString> = root_env(ctx).into_iter().map(|(k, _)| k).collect();
    let mut dropped: Vec<String> = ctx
        .env()
        .keys()
        .filter(|k| !kept.contains(k))
        .map(|k| k.to_string_lossy().into_owned())
        .filter(|k| {
            k.starts_with("PIP_") || k.starts_with("PYTHON") || ROOT_CA_VARS.contains(&k.as_str())
        })
        .collect();
    dropped.sort();
    dropped
}

/// The venv shim's fallback line (pyctl gone): the same launcher, in single quotes for sh;
/// isolated (`-I`) in the system tier, whose shims root runs.
pub fn shim_fallback(isolated: bool) -> String {
    let flag = if isolated { " -I" } else { "" };
    format!("exec \"$venv/bin/python\"{flag} -c '{LAUNCHER}' \"$@\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_fits_in_single_quotes() {
        assert!(!LAUNCHER.contains('\''));
    }

    #[test]
    fn root_path_keeps_only_root_controlled_folders() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let joined =
            std::env::join_paths([dir.path(), Path::new("/usr/bin"), Path::new("rel")]).unwrap();
        let kept = root_path(Some(&joined));
        let kept: Vec<_> = std::env::split_paths(&kept).collect();
        assert!(!kept.contains(&dir.path().to_path_buf()));
        assert!(!kept.iter().any(|p| p == Path::new("rel")));
        assert_eq!(root_path(None), OsString::from(ROOT_PATH));
    }
}
