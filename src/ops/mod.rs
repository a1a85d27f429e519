//! Changes to a tier: the recorded transaction, the install engine, undo/redo/restore/clean,
//! migrate, the health checks status and doctor share. Uses `tier`, `python`, `sys`, `ui`.

pub mod engine;
pub mod health;
pub mod migrate;
pub mod rebuild;
pub mod transaction;
pub mod undo;
