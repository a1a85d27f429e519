//! The user tier, end to end: the pip wrapper and the foundation commands, undo/redo/snapshots,
//! the everyday commands, doctor, freeze spelling, the venv bootstrap and the exactness oracle,
//! with the real binary, real venvs and the real pip, offline. One test binary (one link step);
//! each former test file is a module: `cargo test --test user undo::` runs the undo tests.
//!
//! Tests run in parallel: each has a tier of its own in a temp dir (`common::Tier`), and none
//! changes process-wide state (environment, current folder, umask) of this process. File
//! descriptors the tests make for children (pipes, pseudo-terminals) are close-on-exec, so a
//! child another test starts at the same moment does not inherit them.

#[path = "../common/mod.rs"]
mod common;

mod doctor;
mod everyday;
mod exactness;
mod freeze_spelling;
mod parked;
mod undo;
mod venv_bootstrap;
mod wrapper;
