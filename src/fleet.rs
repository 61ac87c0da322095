//! The fleet target: units submitted to a CoreOS fleet cluster through
//! fleet's HTTP API (`/fleet/v1`, the API fleetctl uses), as templates whose
//! copies the cluster runs.
//!
//! `api` is the client (a small HTTP/1.1 over TCP or a unix socket),
//! `rollout` plans and applies an instance's templates, rolling changed ones
//! one copy at a time because fleet cannot change a unit in place, and
//! `control` starts, stops and restarts the copies there are.

use std::fmt;
use std::io;

pub mod api;
pub mod control;
pub mod rollout;

pub use api::{FleetClient, JobState, Unit, UnitState};
pub use control::{Control, Controlled, control};
pub use rollout::{
    Action, ApplyOptions, Destroyed, FleetInstance, FleetPlan, PlannedUnit, UnitCopy, UnitStatus,
    apply, destroy, instances, plan, run_everywhere, status, why_not_its_template,
};

/// Something that went wrong talking to fleet, with what unitgen was doing
/// at the time ("submitting blog-staging-web@.service").
#[derive(Debug)]
pub struct FleetError {
    pub doing: String,
    pub kind: ErrorKind,
    /// What was done afterwards to put things back (a rollback), if anything.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub enum ErrorKind {
    /// The endpoint could not be understood.
    Endpoint(String),
    /// fleet could not be reached, or the connection failed.
    Io { endpoint: String, source: io::Error },
    /// fleet answered with an error status; `message` is from its JSON error
    /// entity (`{"error":{"code":..,"message":..}}`) when it sent one.
    Api { status: u16, message: String },
    /// fleet's answer could not be read as HTTP or as the JSON expected.
    Protocol(String),
    /// Input or cluster state that unitgen will not act on (a unit file that
    /// does not parse, a copy that never came up, ...).
    Rollout(String),
}

impl FleetError {
    pub fn new(doing: impl Into<String>, kind: ErrorKind) -> Self {
        FleetError {
            doing: doing.into(),
            kind,
            notes: Vec::new(),
        }
    }

    /// The HTTP status fleet answered with, if the error came from fleet.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Api { status, .. } => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.doing)?;
        match &self.kind {
            ErrorKind::Endpoint(detail) => write!(f, "invalid fleet endpoint: {detail}")?,
            ErrorKind::Io { endpoint, source } => {
                write!(f, "cannot talk to fleet at {endpoint}: {source}")?
            }
            ErrorKind::Api { status, message } => {
                write!(f, "fleet answered {status}")?;
                if !message.is_empty() {
                    // fleet's own words: any text a fleetd (or whatever
                    // answers at the endpoint) sends.
                    write!(f, ": {}", crate::diagnostic::quoted_output(message))?;
                }
            }
            ErrorKind::Protocol(detail) => write!(
                f,
                "unexpected answer from fleet: {}",
                crate::diagnostic::quoted_output(detail)
            )?,
            ErrorKind::Rollout(detail) => write!(f, "{detail}")?,
        }
        for note in &self.notes {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found in round 10: fleet's answer (whatever answers at the
    /// endpoint) was shown with its line feeds, a line of it passing for
    /// unitgen's own.
    #[test]
    fn fleets_answer_adds_no_line_of_its_own() {
        let error = FleetError::new(
            "listing units",
            ErrorKind::Api {
                status: 500,
                message: "busy\nfleet applied every unit".into(),
            },
        );
        assert_eq!(
            error.to_string(),
            "listing units: fleet answered 500: busy\n  | fleet applied every unit"
        );
        let error = FleetError::new("listing units", ErrorKind::Protocol("a\nb".into()));
        assert_eq!(
            error.to_string(),
            "listing units: unexpected answer from fleet: a\n  | b"
        );
    }
}
