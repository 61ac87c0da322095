//! unitgen: compile an app template into systemd units that run Docker
//! containers, and apply them to a host (systemd over D-Bus) or a cluster
//! (fleet).
//!
//! Data flows one way: `template` (parse) → `compile` → `model` → `render`
//! → `plan` (images fetched first: `pull`) → a target: `systemd` (one host,
//! over D-Bus) or `fleet` (a cluster, over fleet's HTTP API). On a host,
//! `secrets` reads the secret values between `model` and `render`: only
//! their keyed digests reach the units, the values go to root-only env files.

pub mod backup;
pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod dns;
pub mod docker;
pub mod docs;
pub mod escape;
pub mod etcd;
pub mod fault;
pub mod fleet;
pub mod http;
pub mod import;
pub mod model;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod render;
pub mod router;
pub mod secrets;
pub mod site;
pub mod site_view;
pub mod state;
pub mod systemd;
pub mod template;
pub mod unit_dir;
pub mod unit_file;
