//! pip's command line as pip's own parser (Python's `optparse`) reads it: general options
//! before the command word, then the command's options anywhere among its arguments; long
//! options by any unique prefix (`--retr 1` is `--retries 1`), `--name=value`, short options in
//! clusters (`-qqU`, `-rFILE`), and `--` ending the options. What is recorded, and whether a
//! command writes at all, is decided from this reading, never from whole names alone.
//!
//! The tables are the union of the options of pip 20.3 (Debian 11, with Debian's `--system`),
//! 23.0 (Debian 12) and 25.1 (Debian 13); `tests/security.rs` checks them against the real pip of the machine, and the
//! distro scenario against the pip of each image (`pyctl __pip-options`).

/// One pip option: every spelling (the first is the canonical one) and whether it takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    pub names: &'static [&'static str],
    pub takes_value: bool,
}

impl Opt {
    pub fn name(&self) -> &'static str {
        self.names[0]
    }
}

const fn opt(names: &'static [&'static str], takes_value: bool) -> Opt {
    Opt { names, takes_value }
}

/// pip's general options (`pip --help`), accepted before the command and after it.
pub const GENERAL: &[Opt] = &[
    opt(&["--cache-dir"], true),
    opt(&["--cert"], true),
    opt(&["--client-cert"], true),
    opt(&["--debug"], false),
    opt(&["--disable-pip-version-check"], false),
    opt(&["--exists-action"], true),
    opt(&["--help", "-h"], false),
    opt(&["--isolated"], false),
    opt(&["--keyring-provider"], true),
    opt(&["--log", "--log-file", "--local-log"], true),
    opt(&["--no-cache-dir"], false),
    opt(&["--no-color"], false),
    opt(&["--no-input"], false),
    opt(&["--no-python-version-warning"], false),
    opt(&["--proxy"], true),
    opt(&["--python"], true),
    opt(&["--quiet", "-q"], false),
    opt(&["--require-virtualenv", "--require-venv"], false),
    opt(&["--resume-retries"], true),
    opt(&["--retries"], true),
    opt(&["--timeout", "--default-timeout"], true),
    opt(&["--trusted-host"], true),
    opt(&["--use-deprecated"], true),
    opt(&["--use-feature"], true),
    opt(&["--verbose", "-v"], false),
    opt(&["--version", "-V"], false),
];

/// `pip install`'s own options.
pub const INSTALL: &[Opt] = &[
    opt(&["--abi"], true),
    opt(&["--break-system-packages"], false),
    opt(&["--build", "--build-dir", "--build-directory", "-b"], true),
    opt(&["--check-build-dependencies"], false),
    opt(&["--compile"], false),
    opt(&["--config-settings", "-C"], true),
    opt(&["--constraint", "-c"], true),
    opt(&["--dry-run"], false),
    opt(&["--editable", "-e"], true),
    opt(&["--extra-index-url"], true),
    opt(&["--find-links", "-f"], true),
    opt(&["--force-reinstall"], false),
    opt(&["--global-option"], true),
    opt(&["--group"], true),
    opt(&["--ignore-installed", "-I"], false),
    opt(&["--ignore-requires-python"], false),
    opt(&["--implementation"], true),
    opt(&["--index-url", "--pypi-url", "-i"], true),
    opt(&["--install-option"], true),
    opt(&["--no-binary"], true),
    opt(&["--no-build-isolation"], false),
    opt(&["--no-clean"], false),
    opt(&["--no-compile"], false),
    opt(&["--no-deps", "--no-dependencies"], false),
    opt(&["--no-index"], false),
    opt(&["--no-use-pep517"], false),
    opt(&["--no-user"], false),
    opt(&["--no-warn-conflicts"], false),
    opt(&["--no-warn-script-location"], false),
    opt(&["--only-binary"], true),
    opt(&["--platform"], true),
    opt(&["--pre"], false),
    opt(&["--prefer-binary"], false),
    opt(&["--prefix"], true),
    opt(&["--progress-bar"], true),
    opt(&["--python-version"], true),
    opt(&["--report"], true),
    opt(&["--require-hashes"], false),
    opt(&["--requirement", "-r"], true),
    opt(&["--root"], true),
    opt(&["--root-user-action"], true),
    opt(
        &["--src", "--source", "--source-dir", "--source-directory"],
        true,
    ),
    // Debian 11's pip 20.3.4 only (a Debian patch: install into the system's folders). Found by
    // the option-table check in the bullseye image.
    opt(&["--system"], false),
    opt(&["--target", "-t"], true),
    opt(&["--upgrade", "-U"], false),
    opt(&["--upgrade-strategy"], true),
    opt(&["--use-pep517"], false),
    opt(&["--user"], false),
];

/// `pip uninstall`'s own options.
pub const UNINSTALL: &[Opt] = &[
    opt(&["--break-system-packages"], false),
    opt(&["--requirement", "-r"], true),
    opt(&["--root-user-action"], true),
    opt(&["--yes", "-y"], false),
];

/// The command-specific table of a command pyctl records, if it has one.
pub fn command_options(command: &str) -> Option<&'static [Opt]> {
    match command {
        "install" => Some(INSTALL),
        "uninstall" => Some(UNINSTALL),
        _ => None,
    }
}

/// One option as given: which option, its value, and the argument range it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub opt: Opt,
    pub value: Option<String>,
    /// Index of the first argument of this option and how many arguments it took (a cluster
    /// such as `-qU` is one argument shared by two options: both report the same range).
    pub start: usize,
    pub len: usize,
}

/// pip's command line, read as pip reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipArgs {
    /// Options before the command word.
    pub general: Vec<Given>,
    /// The command word and its index.
    pub command: Option<(usize, String)>,
    /// Options after the command word (the command's own and the general ones).
    pub options: Vec<Given>,
    /// Positional arguments after the command word, with their index.
    pub positionals: Vec<(usize, String)>,
    /// An option pip would reject (unknown, ambiguous prefix, missing value) or a command whose
    /// options pyctl does not know: what follows cannot be read for sure.
    pub unclear: bool,
}

impl PipArgs {
    /// Reads `args` (without the program name).
    pub fn parse(args: &[String]) -> PipArgs {
        let mut out = PipArgs::default();
        let mut i = 0;
        // pip hands the command every argument but its word: a `--` before the word ends the
        // command's options too (`pip -- install --no-deps x` asks for a requirement
        // `--no-deps`).
        let mut options_end = false;
        // General options, up to the command word (pip turns interspersed arguments off here).
        while i < args.len() {
            let arg = &args[i];
            if arg == "--" {
                options_end = true;
                i += 1;
                break;
            }
            if !is_option(arg) {
                break;
            }
            match read_option(args, i, GENERAL) {
                Some(given) => {
                    i = given.start + given.len;
                    out.general.extend(given.all);
                }
                None => {
                    out.unclear = true;
                    return out;
                }
            }
        }
        let Some(word) = args.get(i) else {
            return out;
        };
        out.command = Some((i, word.clone()));
        i += 1;
        let Some(own) = command_options(word) else {
            out.unclear = true;
            return out;
        };
        let tables = [own, GENERAL];
        while i < args.len() {
            let arg = &args[i];
            if options_end || !is_option(arg) {
                out.positionals.push((i, arg.clone()));
                i += 1;
                continue;
            }
            if arg == "--" {
                options_end = true;
                i += 1;
                continue;
            }
            match read_option_in(args, i, &tables) {
                Some(given) => {
                    i = given.start + given.len;
                    out.options.extend(given.all);
                }
                None => {
                    out.unclear = true;
                    return out;
                }
            }
        }
        out
    }

    pub fn command_name(&self) -> Option<&str> {
        self.command.as_ref().map(|(_, c)| c.as_str())
    }

    /// Every option given, general ones first.
    pub fn all_options(&self) -> impl Iterator<Item = &Given> {
        self.general.iter().chain(self.options.iter())
    }

    /// Whether the option whose canonical name is `name` was given anywhere.
    pub fn has(&self, name: &str) -> bool {
        self.all_options().any(|g| g.opt.name() == name)
    }

    /// Whether the general options (before the command) include `name`.
    pub fn has_general(&self, name: &str) -> bool {
        self.general.iter().any(|g| g.opt.name() == name)
    }

    /// How many times `-q`/`--quiet` was given, anywhere.
    pub fn quiet_count(&self) -> usize {
        self.all_options()
            .filter(|g| g.opt.name() == "--quiet")
            .count()
    }
}

/// Whether optparse treats an argument as an option: it starts with `-` and is not `-` alone.
fn is_option(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-')
}

struct Read {
    start: usize,
    len: usize,
    all: Vec<Given>,
}

fn read_option(args: &[String], i: usize, table: &'static [Opt]) -> Option<Read> {
    read_option_in(args, i, &[table])
}

/// Reads the option (or short cluster) at `args[i]`; `None` when pip would reject it.
fn read_option_in(args: &[String], i: usize, tables: &[&'static [Opt]]) -> Option<Read> {
    let arg = &args[i];
    if let Some(long) = arg.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let opt = match_long(&format!("--{name}"), tables)?;
        let (value, len) = match (opt.takes_value, inline) {
            (true, Some(v)) => (Some(v), 1),
            (true, None) => (Some(args.get(i + 1)?.clone()), 2),
            (false, Some(_)) => return None,
            (false, None) => (None, 1),
        };
        let given = Given {
            opt,
            value,
            start: i,
            len,
        };
        return Some(Read {
            start: i,
            len,
            all: vec![given],
        });
    }
    // A short cluster: each letter an option; one that takes a value takes the rest of the
    // argument, or the next argument when nothing is left.
    let letters: Vec<char> = arg[1..].chars().collect();
    let mut all = Vec::new();
    let mut len = 1;
    for (k, letter) in letters.iter().enumerate() {
        let opt = find_short(*letter, tables)?;
        if opt.takes_value {
            let rest: String = letters[k + 1..].iter().collect();
            let value = if rest.is_empty() {
                len = 2;
                args.get(i + 1)?.clone()
            } else {
                rest
            };
            all.push(Given {
                opt,
                value: Some(value),
                start: i,
                len,
            });
            break;
        }
        all.push(Given {
            opt,
            value: None,
            start: i,
            len: 1,
        });
    }
    for g in &mut all {
        g.len = len;
    }
    Some(Read { start: i, len, all })
}

/// optparse's `_match_abbrev`: an exact name wins, else the one option a prefix names.
fn match_long(name: &str, tables: &[&'static [Opt]]) -> Option<Opt> {
    let every = || tables.iter().flat_map(|t| t.iter());
    if let Some(exact) = every().find(|o| o.names.contains(&name)) {
        return Some(*exact);
    }
    let mut found: Option<Opt> = None;
    for o in every() {
        for spelling in o.names.iter().filter(|s| s.starts_with("--")) {
            if spelling.starts_with(name) {
                match found {
                    Some(f) if f.names != o.names => return None,
                    _ => found = Some(*o),
                }
            }
        }
    }
    found
}

fn find_short(letter: char, tables: &[&'static [Opt]]) -> Option<Opt> {
    let wanted = format!("-{letter}");
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|o| o.names.contains(&wanted.as_str()))
        .copied()
}

/// Every option pyctl knows, as `section spelling takes-value` lines (`pyctl __pip-options`),
/// for comparison with the options of a real pip.
pub fn table_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (section, table) in [
        ("general", GENERAL),
        ("install", INSTALL),
        ("uninstall", UNINSTALL),
    ] {
        for o in table {
            for name in o.names {
                lines.push(format!("{section} {name} {}", o.takes_value));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> PipArgs {
        PipArgs::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn prefixes_of_long_options_are_read_as_pip_reads_them() {
        let a = p(&["--retr", "1", "install", "x"]);
        assert_eq!(a.command_name(), Some("install"));
        assert_eq!(a.general[0].opt.name(), "--retries");
        assert_eq!(a.general[0].value.as_deref(), Some("1"));
        let a = p(&["--cache", "/d", "install", "x"]);
        assert_eq!(a.command_name(), Some("install"));
        assert_eq!(
            p(&["--cache=/d", "install"]).command_name(),
            Some("install")
        );
        // `--no-c` could be --no-cache-dir or --no-color: pip refuses it.
        assert!(p(&["--no-c", "install", "x"]).unclear);
        let a = p(&["install", "--dry", "x"]);
        assert!(a.has("--dry-run"));
        assert_eq!(a.positionals, vec![(2, "x".to_string())]);
        assert!(p(&["--pyth", "/x/python", "install", "y"]).has_general("--python"));
    }

    #[test]
    fn short_clusters_values_and_double_dash() {
        let a = p(&["-qq", "install", "-Ur", "req.txt", "-e./src", "--", "-h"]);
        assert_eq!(a.quiet_count(), 2);
        assert!(a.has("--upgrade"));
        let r = a.options.iter().find(|g| g.opt.name() == "--requirement");
        assert_eq!(r.unwrap().value.as_deref(), Some("req.txt"));
        let e = a.options.iter().find(|g| g.opt.name() == "--editable");
        assert_eq!(e.unwrap().value.as_deref(), Some("./src"));
        assert!(!a.has("--help"), "-h after -- is a requirement");
        assert_eq!(a.positionals, vec![(6, "-h".to_string())]);
        // `-r -h`: -h is the requirements file, not help.
        assert!(!p(&["install", "-r", "-h"]).has("--help"));
        // `--` before the command: the command still follows.
        assert_eq!(
            p(&["-v", "--", "install", "x"]).command_name(),
            Some("install")
        );
    }

    #[test]
    fn what_pip_rejects_is_unclear() {
        assert!(p(&["--bogus", "install"]).unclear);
        assert!(p(&["install", "-Z"]).unclear);
        assert!(p(&["install", "-r"]).unclear, "missing value");
        assert!(p(&["install", "--no-deps=1"]).unclear, "flag given a value");
        assert!(
            p(&["list", "--format", "json"]).unclear,
            "no table for list"
        );
        assert!(!p(&["install", "-", "x"]).unclear, "- alone is an argument");
    }
}
