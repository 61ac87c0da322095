//! An instance as installed on this host: its unit files and whose each
//! is, read from their `[X-Unitgen]` sections. What the operating commands
//! (start, stop, restart, logs, exec) act on: the host, not the template.

use miette::{IntoDiagnostic as _, Result, WrapErr as _, miette};

use super::FileArgs;
use super::host::HostArgs;
use crate::render::{self, Owner, UnitFile};

pub struct Installed {
    pub app: String,
    pub instance: String,
    /// Sorted by unit name.
    pub units: Vec<(UnitFile, Owner)>,
}

impl Installed {
    /// The installed units of `instance` of the template's app; an error
    /// when there are none.
    /// `target` is `INSTANCE` or `APP/INSTANCE` (see `FileArgs::select`).
    pub fn read(file: &FileArgs, host: &HostArgs, target: &str) -> Result<Installed> {
        let (app, instance) = file.app_and_instance(target)?;
        let instance = instance.as_str();
        let units: Vec<(UnitFile, Owner)> = host
            .installed(&app, instance)?
            .into_iter()
            .map(|unit| {
                let owner = render::owner(&unit.text).unwrap_or_default();
                (unit, owner)
            })
            .collect();
        if units.is_empty() {
            return Err(miette!(
                "{} is not installed in {} (apply it first)",
                crate::model::prefix(&app, instance),
                crate::diagnostic::shown_path(&host.host()?.unit_dir)
            ));
        }
        Ok(Installed {
            app,
            instance: instance.to_string(),
            units,
        })
    }

    pub fn name(&self) -> String {
        crate::model::prefix(&self.app, &self.instance)
    }

    /// The services installed, in unit-name order.
    pub fn services(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter_map(|(_, owner)| owner.service.as_deref())
            .collect()
    }

    /// The units of the named services (each service's unit and its
    /// sidekick), or, when none is named, every unit of the instance.
    /// A name that is not an installed service is refused, naming those
    /// that are.
    pub fn select(&self, services: &[String]) -> Result<Vec<&(UnitFile, Owner)>> {
        let known = self.services();
        if let Some(unknown) = services.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(miette!(
                "{} has no service `{}`; installed: {}",
                self.name(),
                crate::diagnostic::shown(unknown),
                known.join(", ")
            ));
        }
        Ok(self
            .units
            .iter()
            .filter(|(_, owner)| {
                services.is_empty()
                    || services.iter().any(|s| {
                        owner.service.as_ref() == Some(s) || owner.announces.as_ref() == Some(s)
                    })
            })
            .collect())
    }
}

/// Every instance with units installed on the host, as (app, instance),
/// sorted.
pub fn instances(host: &HostArgs) -> Result<Vec<(String, String)>> {
    let unit_dir = host.host()?.unit_dir;
    let units = crate::unit_dir::read_all(&unit_dir)
        .into_diagnostic()
        .wrap_err_with(|| {
            format!(
                "reading units in {}",
                crate::diagnostic::shown_path(&unit_dir)
            )
        })?;
    let found: std::collections::BTreeSet<(String, String)> = (units.into_iter())
        // The host's router is no instance's.
        .filter(|(_, owner)| !owner.app.is_empty() && !owner.instance.is_empty())
        .map(|(_, owner)| (owner.app, owner.instance))
        .collect();
    Ok(found.into_iter().collect())
}
