//! `pyctl hook apt|dnf|pacman`: called by the package managers around a transaction, they find
//! the Python distributions the distro packages bring and report conflicts with the system
//! tier in the package manager's output and syslog. With `hooks.on_conflict = "block"` the apt
//! hook (which runs before dpkg unpacks anything) refuses the transaction.
//!
//! Input is untrusted and bounded: at most `MAX_INPUT` bytes are read, lines are parsed
//! leniently, and every external command runs with a time limit.

use std::io::Read;
use std::time::Duration;

use anyhow::Result;

use crate::config::OnConflict;
use crate::conflicts::{self, Conflict, DistroDist};
use crate::context::Context;
use crate::inventory::PackageSet;
use crate::tier::{self, TierKind};
use crate::ui::Ui;

/// The most a hook reads from its standard input.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

/// One package action of apt's `Pre-Install-Pkgs` protocol (versions 2 and 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptAction {
    pub package: String,
    pub old_version: Option<String>,
    pub new_version: Option<String>,
    /// A `.deb` to unpack; `None` for `**CONFIGURE**` and `**REMOVE**`.
    pub deb: Option<String>,
    pub remove: bool,
}

/// Parses apt's hook input. Version 3 lines: name, old version, old arch, old multi-arch,
/// direction, new version, new arch, new multi-arch, action (apt.conf(5)); version 2 lines have
/// no arch fields; version 1 input is a bare list of `.deb` file names. The configuration block
/// (key=value lines up to the first blank line) is skipped.
pub fn parse_apt_input(input: &str) -> Vec<AptAction> {
    let mut lines = input.lines();
    let version = match lines.clone().next().map(str::trim) {
        Some("VERSION 2") => 2,
        Some("VERSION 3") => 3,
        _ => 1,
    };
    if version == 1 {
        return lines
            .map(str::trim)
            .filter(|l| l.ends_with(".deb"))
            .map(|l| AptAction {
                package: l
                    .rsplit('/')
                    .next()
                    .unwrap_or(l)
                    .split('_')
                    .next()
                    .unwrap_or(l)
                    .to_string(),
                old_version: None,
                new_version: None,
                deb: Some(l.to_string()),
                remove: false,
            })
            .collect();
    }
    lines.next();
    // Configuration space, up to the first blank line.
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
    }
    let fields_before_action = if version == 3 { 8 } else { 4 };
    let version_field = |v: &str| (v != "-").then(|| v.to_string());
    lines
        .filter_map(|line| {
            let mut rest = line.trim_start();
            let mut fields = Vec::with_capacity(fields_before_action);
            for _ in 0..fields_before_action {
                let end = rest.find(char::is_whitespace)?;
                fields.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            let action = rest.trim_end();
            if action.is_empty() {
                return None;
            }
            let (old, new) = if version == 3 {
                (fields[1], fields[5])
            } else {
                (fields[1], fields[3])
            };
            Some(AptAction {
                package: fields[0].to_string(),
                old_version: version_field(old),
                new_version: version_field(new),
                deb: (!action.starts_with("**")).then(|| action.to_string()),
                remove: action == "**REMOVE**",
            })
        })
        .collect()
}

/// `pacman -Ql` output: `package /path` per line.
pub fn parse_pacman_files(listing: &str) -> Vec<(String, String)> {
    listing
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, f)| (p.to_string(), f.to_string()))
        .collect()
}

/// Reads standard input, at most `MAX_INPUT` bytes (the rest is drained so the writer never
/// blocks).
fn read_stdin() -> String {
    let mut buf = Vec::new();
    let stdin = std::io::stdin();
    let mut handle = stdin.lock();
    let _ = (&mut handle).take(MAX_INPUT as u64).read_to_end(&mut buf);
    let _ = std::io::copy(&mut handle, &mut std::io::sink());
    String::from_utf8_lossy(&buf).into_owned()
}

/// The system tier's package set, if there is one to compare against.
fn system_set(ctx: &Context, ui: &Ui) -> Option<(PackageSet, OnConflict)> {
    let root = tier::system_root(ctx);
    let tier = tier::Tier::new(TierKind::System, root);
    if !tier.venv_exists() {
        return None;
    }
    // A broken configuration must not break the package manager: say so, and warn only.
    let on_conflict = match tier.config() {
        Ok(c) => c.hooks.on_conflict,
        Err(e) => {
            ui.warn(&format!(
                "hook: {e:#}; using hooks.on_conflict = \"warn\" until that is fixed"
            ));
            OnConflict::default()
        }
    };
    PackageSet::scan(&tier.venv())
        .ok()
        .map(|s| (s, on_conflict))
}

/// Prints conflicts where the package manager's user sees them, logs them to syslog, and
/// returns the hook's exit code.
fn report(
    ui: &Ui,
    manager: &str,
    conflicts: &[Conflict],
    on_conflict: OnConflict,
    can_block: bool,
) -> i32 {
    for c in conflicts {
        ui.warn(&format!("{manager} hook: {c}"));
        crate::record::syslog_line(&format!("{manager} hook conflict: {c}"));
    }
    if !conflicts.is_empty() && on_conflict == OnConflict::Block && can_block {
        ui.error(&format!(
            "refusing the transaction: {} conflict(s) with the system Python tier \
             (hooks.on_conflict = \"block\"; set it to \"warn\" to let such transactions through)",
            conflicts.len()
        ));
        return 1;
    }
    0
}

pub fn apt(ctx: &Context, ui: &Ui) -> Result<i32> {
    let input = read_stdin();
    let actions = parse_apt_input(&input);
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(0);
    };
    // Each .deb once, only those that exist; dpkg-deb runs on all cores.
    let mut debs: Vec<(&str, &str)> = actions
        .iter()
        .filter(|a| !a.remove)
        .filter_map(|a| a.deb.as_deref().map(|d| (a.package.as_str(), d)))
        .filter(|(_, d)| std::path::Path::new(d).is_file())
        .collect();
    debs.sort();
    debs.dedup();
    let found = crate::parallel::map(&debs, |(package, deb)| {
        let listing = conflicts::run_bounded(
            conflicts::system_tool("dpkg-deb")
                .arg("--contents")
                .arg(deb),
            COMMAND_LIMIT,
            64 * 1024 * 1024,
        );
        match listing {
            Ok(l) => {
                let paths = conflicts::parse_dpkg_contents(&l);
                conflicts::dists_in_paths(paths.iter().map(String::as_str), Some(package))
            }
            Err(e) => {
                log::warn!("{deb}: {e:#}");
                Vec::new()
            }
        }
    });
    let dists: Vec<DistroDist> = found.into_iter().flatten().collect();
    let conflicts = conflicts::version_conflicts(&dists, "system", &set);
    Ok(report(ui, "apt", &conflicts, on_conflict, true))
}

/// dnf's post-transaction actions pass package names; their files come from `rpm -ql`.
pub fn dnf(ctx: &Context, ui: &Ui, packages: &[String]) -> Result<i32> {
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(0);
    };
    let mut conflicts = Vec::new();
    for package in packages {
        let Ok(listing) = conflicts::run_bounded(
            conflicts::system_tool("rpm").arg("-ql").arg(package),
            COMMAND_LIMIT,
            64 * 1024 * 1024,
        ) else {
            continue;
        };
        let dists = conflicts::dists_in_paths(listing.lines(), Some(package));
        conflicts.extend(conflicts::version_conflicts(&dists, "system", &set));
    }
    Ok(report(ui, "dnf", &conflicts, on_conflict, false))
}

/// pacman's hook passes the target package names on standard input (`NeedsTargets`).
pub fn pacman(ctx: &Context, ui: &Ui) -> Result<i32> {
    let input = read_stdin();
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(0);
    };
    let targets: Vec<&str> = input
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut conflicts = Vec::new();
    for target in targets {
        let Ok(listing) = conflicts::run_bounded(
            conflicts::system_tool("pacman").arg("-Ql").arg(target),
            COMMAND_LIMIT,
            64 * 1024 * 1024,
        ) else {
            continue;
        };
        let files = parse_pacman_files(&listing);
        let dists = conflicts::dists_in_paths(files.iter().map(|(_, f)| f.as_str()), Some(target));
        conflicts.extend(conflicts::version_conflicts(&dists, "system", &set));
    }
    Ok(report(ui, "pacman", &conflicts, on_conflict, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: &str = "VERSION 3\nAPT::Architecture=amd64\nDir::Etc=etc/apt/\n\n\
python3-requests - - none < 2.28.1+dfsg-1 all foreign /var/cache/apt/archives/python3-requests_2.28.1+dfsg-1_all.deb\n\
python3-six 1.15.0-2 all foreign < 1.16.0-4 all foreign /var/cache/apt/archives/python3-six_1.16.0-4_all.deb\n\
python3-requests - - none < 2.28.1+dfsg-1 all foreign **CONFIGURE**\n\
oldpkg 1.0 amd64 same > - - none **REMOVE**\n";

    #[test]
    fn apt_v3_lines() {
        let a = parse_apt_input(V3);
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].package, "python3-requests");
        assert_eq!(a[0].old_version, None);
        assert_eq!(a[0].new_version.as_deref(), Some("2.28.1+dfsg-1"));
        assert_eq!(
            a[0].deb.as_deref(),
            Some("/var/cache/apt/archives/python3-requests_2.28.1+dfsg-1_all.deb")
        );
        assert_eq!(a[1].old_version.as_deref(), Some("1.15.0-2"));
        assert_eq!(a[2].deb, None);
        assert!(a[3].remove);
    }

    #[test]
    fn apt_v2_and_v1() {
        let v2 = "VERSION 2\nA=b\n\npython3-x - < 1.0 /tmp/python3-x_1.0_all.deb\n";
        let a = parse_apt_input(v2);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].deb.as_deref(), Some("/tmp/python3-x_1.0_all.deb"));
        let v1 = "/tmp/a_1.0_all.deb\n/tmp/b_2_all.deb\n";
        let a = parse_apt_input(v1);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].package, "b");
    }

    #[test]
    fn malformed_input_is_skipped_not_fatal() {
        assert!(parse_apt_input("").is_empty());
        assert!(parse_apt_input("VERSION 3\n\nshort line\n").is_empty());
        let binary: String = (0..2000u32)
            .map(|i| char::from_u32(i % 0x7f).unwrap_or('x'))
            .collect();
        let _ = parse_apt_input(&binary);
        let huge = "VERSION 3\n\n".to_string() + &"x ".repeat(200_000);
        assert!(parse_apt_input(&huge).len() <= 1);
    }

    #[test]
    fn pacman_listing() {
        let l = "python-requests /usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/\n";
        let f = parse_pacman_files(l);
        assert_eq!(f[0].0, "python-requests");
        let d =
            conflicts::dists_in_paths(f.iter().map(|(_, p)| p.as_str()), Some("python-requests"));
        assert_eq!(d[0].version, "2.31.0");
    }
}
