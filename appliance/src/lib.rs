//! The sealed Stella Ops appliance. Domains land as modules (`store`, `import`, `scan`, `vuln`, `vex`,
//! `policy`, `release`, `evidence`, `audit`, `deploy`, `web`), each with a small public surface.

pub mod diagnostics;
