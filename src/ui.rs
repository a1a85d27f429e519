//! Everything pyctl prints for people goes through here: colour (`--color`, `NO_COLOR`,
//! `ui.color`), quiet mode, and the shared renderings of changes and history.

use std::io::{IsTerminal, Write};

use crate::history::{Changes, Modified};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy)]
pub enum Style {
    Added,
    Removed,
    Upgraded,
    Downgraded,
    Changed,
    Dim,
    Bold,
    Warn,
    Error,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Added => "32",
            Style::Removed => "31",
            Style::Upgraded => "36",
            Style::Downgraded => "33",
            Style::Changed => "35",
            Style::Dim => "2",
            Style::Bold => "1",
            Style::Warn => "33;1",
            Style::Error => "31;1",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ui {
    color_out: bool,
    color_err: bool,
    pub quiet: bool,
    /// Listings print JSON instead of text.
    pub json: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice, no_color_env: bool, config_color: bool, quiet: bool) -> Ui {
        let decide = |is_tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !no_color_env && config_color,
        };
        Ui {
            color_out: decide(std::io::stdout().is_terminal()),
            color_err: decide(std::io::stderr().is_terminal()),
            quiet,
            json: false,
        }
    }

    pub fn plain() -> Ui {
        Ui {
            color_out: false,
            color_err: false,
            quiet: false,
            json: false,
        }
    }

    fn paint(enabled: bool, style: Style, text: &str) -> String {
        if enabled {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_string()
        }
    }

    /// Styles text bound for stdout.
    pub fn out(&self, style: Style, text: &str) -> String {
        Self::paint(self.color_out, style, text)
    }

    /// Styles text bound for stderr.
    pub fn err(&self, style: Style, text: &str) -> String {
        Self::paint(self.color_err, style, text)
    }

    /// A status line on stderr (`pyctl: ...`), silent with `-q`.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{} {msg}", self.err(Style::Dim, "pyctl:"));
        }
    }

    pub fn warn(&self, msg: &str) {
        eprintln!("{} {msg}", self.err(Style::Warn, "pyctl: warning:"));
    }

    pub fn error(&self, msg: &str) {
        eprintln!("{} {msg}", self.err(Style::Error, "pyctl: error:"));
    }

    /// The lines of a change list, one distribution each, coloured by kind of change.
    pub fn change_lines(&self, changes: &Changes, for_stderr: bool) -> Vec<String> {
        let paint = |style, text: &str| {
            if for_stderr {
                self.err(style, text)
            } else {
                self.out(style, text)
            }
        };
        let mut lines = Vec::new();
        for line in &changes.added {
            lines.push(format!("  {} {line}", paint(Style::Added, "added     ")));
        }
        for m in &changes.modified {
            let (style, word, text) = describe_modified(m);
            lines.push(format!("  {} {text}", paint(style, word)));
        }
        for line in &changes.removed {
            lines.push(format!("  {} {line}", paint(Style::Removed, "removed   ")));
        }
        lines
    }

    /// Writes lines to stdout; a closed pipe ends quietly.
    pub fn print_lines(&self, lines: &[String]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}

/// Upgrade, downgrade or other change, with a short `name old -> new` text.
fn describe_modified(m: &Modified) -> (Style, &'static str, String) {
    let version = |line: &str| {
        line.split_once("==")
            .map(|(_, v)| v.trim_start_matches('=').to_string())
    };
    match (version(&m.from), version(&m.to)) {
        (Some(a), Some(b)) => {
            let name = m.to.split("==").next().unwrap_or(&m.name).to_string();
            let order = match (
                a.parse::<pep440_rs::Version>(),
                b.parse::<pep440_rs::Version>(),
            ) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.cmp(&b),
            };
            let (style, word) = if order.is_lt() {
                (Style::Upgraded, "upgraded  ")
            } else if order.is_gt() {
                (Style::Downgraded, "downgraded")
            } else {
                (Style::Changed, "changed   ")
            };
            (style, word, format!("{name} {a} -> {b}"))
        }
        _ => (
            Style::Changed,
            "changed   ",
            format!("{} -> {}", m.from, m.to),
        ),
    }
}
