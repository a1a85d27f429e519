//! Changes to a tier: the recorded transaction, the install engine, the transaction to a target
//! set and what runs it (undo/redo, snapshots and restore, clean and gc, doctor's repairs),
//! migrate, the rebuild after a Python upgrade, and the health checks status, `system status` and
//! doctor share. Uses `tier`, `python`, `sys`, `ui`.

pub mod clean;
pub mod engine;
pub mod health;
mod kept;
pub mod migrate;
pub mod rebuild;
pub mod repair;
pub mod snapshots;
pub mod target;
pub mod transaction;
pub mod undo;
