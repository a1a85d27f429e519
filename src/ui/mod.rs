//! Everything pyctl prints for people goes through here: colour (`--color`, `NO_COLOR`,
//! `ui.color`), quiet mode, and the shared renderings of changes and history.

use std::io::{IsTerminal, Write};

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

    /// Writes lines to stdout; a closed pipe ends quietly.
    pub fn print_lines(&self, lines: &[String]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
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

/// A stored UTC time stamp in local time, for display.
pub fn local_time(timestamp: &str) -> String {
    timestamp
        .parse::<jiff::Timestamp>()
        .map(|ts| {
            ts.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| timestamp.to_string())
}

/// A size in bytes for people: `512 B`, `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
