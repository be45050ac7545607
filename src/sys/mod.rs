//! The system underneath every stage: which container engine we run in,
//! opening files in folders others own, whom programs run as, and signals.

pub mod container;
pub mod interrupt;
pub mod privilege;
pub mod proc;
pub mod safe_fs;
