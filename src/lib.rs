//! unitgen: compile an app template into systemd units that run Docker
//! containers, and apply them to a host (systemd over D-Bus) or a cluster
//! (fleet).
//!
//! Data flows one way: `template` (parse) → `model` → `render` → `plan` →
//! a target (`systemd` or `fleet`).

pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod escape;
pub mod import;
pub mod model;
pub mod render;
pub mod template;
