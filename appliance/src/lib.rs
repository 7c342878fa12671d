//! The sealed Stella Ops appliance. Domains are modules (`store`, `site`, `import`, `audit`, and later
//! `scan`, `vuln`, `vex`, `policy`, `release`, `evidence`, `deploy`, `web`), each with a small public
//! surface.

pub mod audit;
pub mod bench;
pub mod bench_console;
pub mod bench_scan;
pub mod demo;
pub mod diagnostics;
pub mod import;
pub mod scan;
pub mod sigstore;
pub mod site;
pub mod status;
pub mod store;
pub mod vuln;
pub mod web;
