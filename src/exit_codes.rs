//! Exit codes of the `pyctl` command. The pip wrapper exits with pip's own code instead.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// Something went wrong, or (doctor) problems remain.
    Failure,
    /// Bad command line (clap's code).
    Usage,
    /// Ended by Ctrl-C.
    Interrupted,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Interrupted => 130,
        }
    }
}
