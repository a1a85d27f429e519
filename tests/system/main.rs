//! Root, the system tier and other accounts: `pyctl system init`/`status` (`tier`), the
//! package-manager hooks (`hooks`), and the holes an attack on a shared machine found
//! (`security`), surviving a Python upgrade (`rebuild`), which wheels root's new venv may take pip from
//! (`venv_wheels`), with real accounts (`pyctltest-a`, `pyctltest-b`) when run as root. One test
//! binary; `cargo test --test system security::` runs one module.
//!
//! Tests run in parallel: every system tier is a root-owned temp folder of its own
//! (`common::SystemPrefix`, `PYCTL_SYSTEM_PREFIX`), never /opt/system-python.

#[path = "../common/mod.rs"]
mod common;

mod hooks;
mod rebuild;
mod security;
mod tier;
mod venv_wheels;
