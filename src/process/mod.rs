//! Process-wide resource settings, made once at start.
//!
//! - [`open_files`]: the open-file limit, and the connection ceiling it sets.
//! - [`allocator`]: mimalloc, and large blocks back to the system when freed.

pub mod allocator;
pub mod open_files;
