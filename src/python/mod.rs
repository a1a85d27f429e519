//! What pyctl knows of Python packaging: names, METADATA, direct_url, RECORD, wheel and sdist
//! file names, freeze lines, the site-packages scan, pyvenv.cfg, pip's arguments, the
//! dependency check, the index, what ensurepip installs, the venv bootstrap and the console scripts it writes. Uses
//! `sys`.

pub mod bootstrap;
pub mod bytecode;
pub mod depcheck;
pub mod direct_url;
pub mod ensurepip;
pub mod filename;
pub mod freeze;
pub mod index;
pub mod inventory;
pub mod metadata;
pub mod names;
pub mod pipargs;
pub mod pyvenv;
pub mod record;
pub mod scripts;
