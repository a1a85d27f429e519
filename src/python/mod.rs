//! What pyctl knows of Python packaging: names, METADATA, RECORD, freeze lines, the
//! site-packages scan, pyvenv.cfg, pip's arguments, the dependency check, the index, and the
//! venv bootstrap. Uses `sys`.

pub mod bootstrap;
pub mod depcheck;
pub mod freeze;
pub mod index;
pub mod inventory;
pub mod pipargs;
pub mod pyvenv;
pub mod record;
