//! unitgen: compile an app template into systemd units that run Docker
//! containers, and apply them to a host (systemd over D-Bus) or a cluster
//! (fleet).
//!
//! Data flows one way: `template` (parse) → `model` → `render` → `plan` →
//! a target (`systemd` or `fleet`).

pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod docker;
pub mod escape;
pub mod model;
pub mod plan;
pub mod progress;
pub mod render;
pub mod state;
pub mod systemd;
pub mod template;
pub mod unit_dir;
