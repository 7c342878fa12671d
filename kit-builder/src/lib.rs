//! The offline kit: its format (writer and reader, so round trips sit in one place) and the library behind
//! the `stella-kit` command, which runs on the connected side.

pub mod bench;
pub mod build;
pub mod cli;
pub mod clock;
pub mod exit;
pub mod files;
pub mod kit_toml;
pub mod layout;
pub mod manifest;
pub mod oci;
pub mod read;
pub mod registry;
pub mod signers;
pub mod signing;
pub(crate) mod single_read;
pub mod source;
mod tar_index;
pub mod volume;
