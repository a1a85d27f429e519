//! `pyctl hook apt|dnf|pacman`: called by the package managers around a transaction, they find
//! the Python distributions the distro packages bring and report conflicts with the system
//! tier in the package manager's output and syslog. With `hooks.on_conflict = "block"` the apt
//! hook (which runs before dpkg unpacks anything) refuses the transaction.
//!
//! Input is untrusted and bounded: at most `MAX_INPUT` bytes are read, lines are parsed
//! leniently, and every external command runs with a time limit.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use anyhow::Result;

use crate::commands::conflicts::{self, Conflict, DistroDist};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::python::inventory::PackageSet;
use crate::tier::config::OnConflict;
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
) -> ExitCode {
    for c in conflicts {
        ui.warn(&format!("{manager} hook: {c}"));
        crate::sys::syslog::syslog_line(&format!("{manager} hook conflict: {c}"));
    }
    if !conflicts.is_empty() && on_conflict == OnConflict::Block && can_block {
        ui.error(&format!(
            "refusing the transaction: {} conflict(s) with the system Python tier \
             (hooks.on_conflict = \"block\"; set it to \"warn\" to let such transactions through)",
            conflicts.len()
        ));
        return ExitCode::Failure;
    }
    ExitCode::Success
}

pub fn apt(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    let input = read_stdin();
    let actions = parse_apt_input(&input);
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(ExitCode::Success);
    };
    // Each .deb once; dpkg-deb runs on all cores, within the hook's overall time bound.
    let mut debs: Vec<(&str, &str)> = actions
        .iter()
        .filter(|a| !a.remove)
        .filter_map(|a| a.deb.as_deref().map(|d| (a.package.as_str(), d)))
        .collect();
    debs.sort();
    debs.dedup();
    let start = std::time::Instant::now();
    let found = crate::sys::parallel::map(&debs, |(package, deb)| {
        if !std::path::Path::new(deb).is_file() {
            return Err("its .deb is not there".to_string());
        }
        let left = HOOK_BUDGET.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "the hook's time bound of {} s ran out",
                HOOK_BUDGET.as_secs()
            ));
        }
        let listing = conflicts::run_bounded(
            crate::sys::tool::system_tool("dpkg-deb")
                .arg("--contents")
                .arg(deb),
            left.min(COMMAND_LIMIT),
            64 * 1024 * 1024,
        )
        .map_err(|e| format!("{e:#}"))?;
        let paths = conflicts::parse_dpkg_contents(&listing);
        Ok(conflicts::dists_in_paths(
            paths.iter().map(String::as_str),
            Some(package),
        ))
    });
    let mut dists: Vec<DistroDist> = Vec::new();
    let mut unchecked = Unchecked::default();
    for ((package, _), result) in debs.iter().zip(found) {
        match result {
            Ok(found) => dists.extend(found),
            Err(why) => unchecked.add(&why, [package.to_string()]),
        }
    }
    let conflicts = conflicts::version_conflicts(&dists, "system", &set);
    report_unchecked(ui, "apt", &unchecked, false);
    Ok(report(ui, "apt", &conflicts, on_conflict, true))
}

/// The whole time a hook may spend reading packages (`dpkg-deb`, `rpm`, `pacman`), however
/// many the transaction has; what is left when it runs out is reported as not checked.
pub const HOOK_BUDGET: Duration = Duration::from_secs(60);
/// Package names per `rpm -q` / `pacman -Ql` call.
const NAMES_PER_QUERY: usize = 256;

/// The package database a hook reads file lists from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageDb {
    Rpm,
    Pacman,
}

impl PackageDb {
    fn query(self, names: &[&str]) -> std::process::Command {
        let mut cmd = match self {
            // One `NAME PATH` line per file, as `pacman -Ql` prints them.
            PackageDb::Rpm => {
                let mut c = crate::sys::tool::system_tool("rpm");
                c.args(["-q", "--qf", "[%{=NAME} %{FILENAMES}\\n]"]);
                c
            }
            PackageDb::Pacman => {
                let mut c = crate::sys::tool::system_tool("pacman");
                c.arg("-Ql");
                c
            }
        };
        // Names never read as options, whatever the transaction passed.
        cmd.arg("--").args(names);
        cmd
    }

    /// Names the tool said it does not know: rpm prints `package NAME is not installed` on
    /// stdout, pacman `error: package 'NAME' was not found` on stderr.
    fn unknown_names(self, out: &crate::sys::tool::BoundedOutput) -> Vec<String> {
        match self {
            PackageDb::Rpm => out
                .stdout
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("package ")?
                        .strip_suffix(" is not installed")
                })
                .map(str::to_string)
                .collect(),
            PackageDb::Pacman => out
                .stderr
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("error: package '")?
                        .strip_suffix("' was not found")
                })
                .map(str::to_string)
                .collect(),
        }
    }
}

/// Packages a hook could not check, with the reason, so the report can say so.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unchecked(pub BTreeMap<String, Vec<String>>);

impl Unchecked {
    fn add(&mut self, why: &str, names: impl IntoIterator<Item = String>) {
        self.0.entry(why.to_string()).or_default().extend(names);
    }

    /// One line per reason, naming at most a few packages.
    pub fn lines(&self) -> Vec<String> {
        const SHOWN: usize = 5;
        self.0
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(why, names)| {
                let mut shown: Vec<String> =
                    names.iter().take(SHOWN).map(|n| printable(n, 80)).collect();
                if names.len() > SHOWN {
                    shown.push(format!("and {} more", names.len() - SHOWN));
                }
                format!(
                    "could not check {} package(s) against the system tier ({why}): {}",
                    names.len(),
                    shown.join(", ")
                )
            })
            .collect()
    }
}

/// A name or a tool's complaint as it may be shown on one line of a package manager's output:
/// control characters replaced, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    let shown: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max {
        format!("{shown}...")
    } else {
        shown
    }
}

/// A package name that can be passed to rpm or pacman as one argument: not empty, not an
/// option, no whitespace or control characters, not absurdly long.
fn is_plain_package_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The files of the named installed packages, asked of the package database in batches within
/// `budget`; the packages it could not ask about (odd names, unknown to the database, the
/// database unreadable or locked, the time bound reached) go to `Unchecked`.
pub fn package_files(
    db: PackageDb,
    names: &[String],
    budget: Duration,
) -> (Vec<(String, String)>, Unchecked) {
    let start = std::time::Instant::now();
    let mut unchecked = Unchecked::default();
    let mut plain: Vec<&str> = Vec::new();
    for name in names {
        if is_plain_package_name(name) {
            plain.push(name);
        } else {
            unchecked.add("odd package name", [name.clone()]);
        }
    }
    plain.sort_unstable();
    plain.dedup();
    let mut files = Vec::new();
    for chunk in plain.chunks(NAMES_PER_QUERY) {
        let left = budget.saturating_sub(start.elapsed());
        if left.is_zero() {
            unchecked.add(
                &format!("the hook's time bound of {} s ran out", budget.as_secs()),
                chunk.iter().map(|n| n.to_string()),
            );
            continue;
        }
        let out = match crate::sys::tool::run_bounded_output(
            &mut db.query(chunk),
            left.min(COMMAND_LIMIT),
            64 * 1024 * 1024,
        ) {
            Ok(out) => out,
            Err(e) => {
                unchecked.add(&format!("{e:#}"), chunk.iter().map(|n| n.to_string()));
                continue;
            }
        };
        let listed: Vec<(String, String)> = parse_pacman_files(&out.stdout)
            .into_iter()
            .filter(|(_, f)| f.starts_with('/'))
            .collect();
        let unknown = db.unknown_names(&out);
        // Names neither listed nor said to be unknown: packages without files when the tool
        // was content, else not checked (a database missing, locked or damaged, a bad query).
        let complaint: Vec<&str> = out
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains("was not found"))
            .take(3)
            .collect();
        let said = (!complaint.is_empty()).then(|| complaint.join(" "));
        if !out.success || said.is_some() {
            let answered: std::collections::BTreeSet<&str> = listed
                .iter()
                .map(|(p, _)| p.as_str())
                .chain(unknown.iter().map(String::as_str))
                .collect();
            let why = match &said {
                Some(line) => format!("{} said: {}", out.program, printable(line, 240)),
                None => format!("{} failed ({})", out.program, out.status),
            };
            unchecked.add(
                &why,
                chunk
                    .iter()
                    .filter(|n| !answered.contains(*n))
                    .map(|n| n.to_string()),
            );
        }
        unchecked.add("not in the package database", unknown);
        files.extend(listed);
    }
    (files, unchecked)
}

/// The conflicts in the files of packages, grouped by package.
fn conflicts_in_files(files: &[(String, String)], set: &PackageSet) -> Vec<Conflict> {
    let mut by_package: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (package, file) in files {
        by_package.entry(package).or_default().push(file);
    }
    by_package
        .into_iter()
        .flat_map(|(package, paths)| {
            let dists = conflicts::dists_in_paths(paths, Some(package));
            conflicts::version_conflicts(&dists, "system", set)
        })
        .collect()
}

/// Says what could not be checked, where the conflicts go.
fn report_unchecked(ui: &Ui, manager: &str, unchecked: &Unchecked, dnf5_log: bool) {
    for line in unchecked.lines() {
        ui.warn(&format!("{manager} hook: {line}"));
        crate::sys::syslog::syslog_line(&format!("{manager} hook: {line}"));
        if dnf5_log {
            dnf5_log_line(&line);
        }
    }
}

/// dnf 5's actions plugin reads an action's standard output as `key=value` lines; a
/// `log.WARNING=` line goes to dnf's log (libdnf5-actions(8)). One line, no control characters.
fn dnf5_log_line(message: &str) {
    let line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    ui_println(&format!("log.WARNING=pyctl: {line}"));
}

fn ui_println(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// dnf's post-transaction actions pass package names (dnf 4's plugin and dnf 5's actions
/// plugin run the command once per package); their files come from the rpm database. With
/// `dnf5`, each message is also written as a `log.WARNING=` line for dnf 5's log.
pub fn dnf(ctx: &Context, ui: &Ui, packages: &[String], dnf5: bool) -> Result<ExitCode> {
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(ExitCode::Success);
    };
    let (files, unchecked) = package_files(PackageDb::Rpm, packages, HOOK_BUDGET);
    let conflicts = conflicts_in_files(&files, &set);
    let manager = if dnf5 { "dnf5" } else { "dnf" };
    if dnf5 {
        for c in &conflicts {
            dnf5_log_line(&format!("{manager} hook: {c}"));
        }
    }
    report_unchecked(ui, manager, &unchecked, dnf5);
    Ok(report(ui, manager, &conflicts, on_conflict, false))
}

/// pacman's hook passes the target package names on standard input (`NeedsTargets`).
pub fn pacman(ctx: &Context, ui: &Ui) -> Result<ExitCode> {
    let input = read_stdin();
    let Some((set, on_conflict)) = system_set(ctx, ui) else {
        return Ok(ExitCode::Success);
    };
    let targets: Vec<String> = input
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let (files, unchecked) = package_files(PackageDb::Pacman, &targets, HOOK_BUDGET);
    let conflicts = conflicts_in_files(&files, &set);
    report_unchecked(ui, "pacman", &unchecked, false);
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
    fn odd_package_names_are_not_passed_to_the_tools() {
        for plain in [
            "python3-requests",
            "libstdc++",
            "a.b_c~d^e",
            "\u{e9}t\u{e9}",
        ] {
            assert!(is_plain_package_name(plain), "{plain}");
        }
        let long = "x".repeat(257);
        for odd in ["", "-rf", "--all", "a b", "a\tb", "a\u{1}b", long.as_str()] {
            assert!(!is_plain_package_name(odd), "{odd:?}");
        }
    }

    #[test]
    fn unchecked_lines_name_a_few_and_count_the_rest() {
        let mut u = Unchecked::default();
        u.add("odd package name", ["a\u{1}b".to_string()]);
        u.add(
            "not in the package database",
            (0..7).map(|i| format!("p{i}")),
        );
        assert_eq!(
            u.lines(),
            vec![
                "could not check 7 package(s) against the system tier (not in the package \
                 database): p0, p1, p2, p3, p4, and 2 more",
                "could not check 1 package(s) against the system tier (odd package name): a?b",
            ]
        );
        assert!(Unchecked::default().lines().is_empty());
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
