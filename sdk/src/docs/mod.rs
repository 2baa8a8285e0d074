//! Prose guides, as doc-only modules.

pub mod abi_evolution;
pub mod guide;
pub mod safety;
