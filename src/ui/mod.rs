//! Everything pyctl prints for people goes through here: colour (`--color`, `NO_COLOR`,
//! `ui.color`), quiet mode, and the shared renderings of changes and history.

use std::io::{IsTerminal, Write};

use crate::tier::history::{Changes, Modified};

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

/// How long work runs before its progress line appears (`PYCTL_PROGRESS_DELAY_MS` overrides).
const PROGRESS_DELAY_MS: u64 = 1000;

/// A progress line on stderr for work that runs longer than about a second ("restoring 37/99
/// distributions"), redrawn a few times a second and erased when the work ends. Only on a
/// terminal, and never in quiet or JSON mode: elsewhere it costs nothing and prints nothing.
pub struct Progress {
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// One more item done.
    pub fn inc(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Ui {
    /// Starts a progress line for `total` items of `what` (e.g. "restoring").
    pub fn progress(&self, what: &str, total: usize) -> Progress {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc::RecvTimeoutError;
        use std::time::Duration;
        let done = std::sync::Arc::new(AtomicUsize::new(0));
        let shown = !self.quiet && !self.json && std::io::stderr().is_terminal() && total > 0;
        if !shown {
            return Progress {
                done,
                stop: None,
                thread: None,
            };
        }
        let delay = std::env::var("PYCTL_PROGRESS_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(PROGRESS_DELAY_MS);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let counter = done.clone();
        let label = format!("pyctl: {what}");
        let thread = std::thread::spawn(move || {
            if delay > 0
                && !matches!(
                    stopped.recv_timeout(Duration::from_millis(delay)),
                    Err(RecvTimeoutError::Timeout)
                )
            {
                return;
            }
            let mut err = std::io::stderr();
            loop {
                let n = counter.load(Ordering::Relaxed).min(total);
                let _ = write!(err, "\r\x1b[2K{label} {n}/{total}");
                let _ = err.flush();
                if !matches!(
                    stopped.recv_timeout(Duration::from_millis(100)),
                    Err(RecvTimeoutError::Timeout)
                ) {
                    break;
                }
            }
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        });
        Progress {
            done,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}
