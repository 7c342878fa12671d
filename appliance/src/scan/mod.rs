//! The scanner: SBOM first. An image is analysed layer by layer; each layer's result is cached by layer
//! digest, so an image that shares base layers costs only its new layers. Findings come from matching the
//! SBOM against the knowledge store and are recomputed when knowledge changes, without rescanning.

pub mod analyzers;
pub mod package;
