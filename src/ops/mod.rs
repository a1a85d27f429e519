//! Changes to a tier: the recorded transaction, the install engine, undo/redo/restore/clean,
//! migrate. Uses `tier`, `python`, `sys`, `ui`.

pub mod engine;
pub mod migrate;
pub mod rebuild;
pub mod transaction;
pub mod undo;
