//! Exit codes of the `pyctl` command. The pip wrapper exits with pip's own code instead.
//!
//! There is no code for Ctrl-C: pyctl's commands leave SIGINT at its default, so the signal
//! ends them and the shell reports 130 itself (the wrapper passes on pip's 128 + signal).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// Something went wrong, or (doctor, `system status`, the hooks) problems remain.
    Failure,
    /// Bad command line (clap's code).
    Usage,
    /// The exit code of a pip an operation ran (undo, restore, clean, migrate), passed on when
    /// it is neither 0 nor 1.
    Pip(i32),
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Pip(code) => code,
        }
    }

    /// `Success` when `ok`, else `Failure`.
    pub fn success_if(ok: bool) -> ExitCode {
        if ok {
            ExitCode::Success
        } else {
            ExitCode::Failure
        }
    }
}

impl From<i32> for ExitCode {
    /// A numeric exit code: pip's, or one of an operation that still returns a number.
    fn from(code: i32) -> ExitCode {
        match code {
            0 => ExitCode::Success,
            1 => ExitCode::Failure,
            other => ExitCode::Pip(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for code in [0, 1, 2, 23, 130] {
            assert_eq!(ExitCode::from(code).code(), code);
        }
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::success_if(false), ExitCode::Failure);
    }
}
