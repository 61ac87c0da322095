//! What would change: the units an instance renders to, against the units
//! installed for it, and against what the host's systemd makes of them.
//! Pure: comparing texts and observed states, showing diffs.

pub mod image_volumes;

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use crate::diagnostic::{printable, shown};
use crate::render::{UnitFile, digest_matches, started_by_apply};

/// How `plan` describes a changed routed service (see `systemd::handover`).
pub const ROUTED_REPLACE: &str =
    "changed: zero-downtime replace: new version beside the old, traffic switched once healthy";

/// How `plan` describes a changed routes unit (see [`reloads_on_change`]).
pub const ROUTES_RELOAD: &str =
    "changed: reload: the routes are rewritten in place, the old ones served until then";

/// Whether a unit runs a service that routes send to (`Routed=`).
pub fn is_routed(text: &str) -> bool {
    crate::render::owner(text).is_some_and(|o| !o.routed.is_empty())
}

/// Whether a changed unit is reloaded rather than restarted: an instance's
/// routes unit, whose reload writes its routes over the old ones in one
/// step (`templates/units/routes.j2`), where a restart's stop would remove
/// them first and the router would miss the instance for a moment. A unit
/// without `ExecReload=` (an older revision's) is restarted all the same.
pub fn reloads_on_change(text: &str) -> bool {
    crate::render::owner(text).is_some_and(|o| o.routes.is_some())
}

/// What a unit loaded from another file than unitgen's means (see
/// [`Observed::loaded_elsewhere`]), after that file's path.
pub const LOADED_ELSEWHERE: &str = "a file of its name that systemd reads before unitgen's, \
     so it runs that file, not the template (apply leaves it in place; move what it changes \
     into the template and delete it)";

/// How `plan` describes a changed network unit (see [`starts_on_change`]).
pub const NETWORK_REWRITE: &str =
    "changed: rewrite: the network stays, its next start runs the new text";

/// Whether a changed unit is started (nothing to do when it runs) rather
/// than restarted: an instance's network unit. Its network's name follows
/// from the unit's name, so a new text of it (an upgrade of unitgen) only
/// changes what its next start runs. A restart would restart every service
/// of the instance with it (they require it), reported as untouched, and a
/// routed one without its zero-downtime handover.
pub fn starts_on_change(text: &str) -> bool {
    crate::render::owner(text).is_some_and(|o| o.network.is_some())
}

#[derive(Debug, Clone)]
pub struct Changed {
    pub old: UnitFile,
    pub new: UnitFile,
}

/// How `plan` describes a change of a service's routing alone (see
/// [`routing_only`]).
pub const ROUTING_REWRITE: &str =
    "changed: rewrite: only whether the router sends it traffic, its container keeps running";

/// Whether `old` and `new` differ only in unitgen's record of whether the
/// router sends the service traffic (`Routed=`, the comment that says so,
/// and the unit's digest): systemd runs the same command from both, so
/// the file is rewritten and the running container kept. A restart would
/// drop requests just as the router starts (or stops) sending them, as
/// when a domain moves from one instance to another.
pub fn routing_only(old: &str, new: &str) -> bool {
    fn runs(text: &str) -> impl Iterator<Item = &str> {
        text.lines().filter(|line| {
            !line.starts_with('#')
                && !line.starts_with(crate::render::ROUTED_KEY)
                && !line.starts_with(crate::render::DIGEST_KEY)
        })
    }
    old != new && (is_routed(old) || is_routed(new)) && runs(old).eq(runs(new))
}

impl Changed {
    /// Started rather than restarted (a no-op when it runs): a network
    /// unit ([`starts_on_change`]) or a change of routing alone
    /// ([`routing_only`]).
    pub fn only_started(&self) -> bool {
        starts_on_change(&self.new.text) || routing_only(&self.old.text, &self.new.text)
    }
}

/// How `plan` and `status` tell a container that holds the name of `{unit}`'s
/// container, which that unit does not run (see [`Plan::name_holders`]).
pub const NAME_HOLDER: &str = "has the name of {unit}'s container, but the unit does not run it \
     (made by hand?), and its start would fail on the name";

/// How `plan` tells a unit to add that systemd runs without its file.
pub const RUNNING_WITHOUT_FILE: &str = "its file is gone, but systemd runs it (removed by hand?): \
     write it, enable, restart";

/// A unit whose text is unchanged but whose container runs another image
/// than its image reference names on this host now (the tag moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub unit: String,
    pub image: String,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub add: Vec<UnitFile>,
    pub change: Vec<Changed>,
    pub remove: Vec<UnitFile>,
    /// Units whose text is identical: left alone, containers keep running.
    pub keep: Vec<String>,
    /// Unchanged units whose image tag moved: restarted onto the new image.
    pub moved: Vec<Moved>,
    /// Installed units whose text no longer matches the digest unitgen
    /// wrote into them: someone edited them by hand, and applying will
    /// overwrite (or remove) that edit.
    pub hand_edited: Vec<String>,
    /// Units whose file is right but whose state on the host is not (see
    /// [`Plan::observe`]): apply repairs them.
    pub repair: Vec<Repair>,
    /// Drop-ins merged into a unit (`systemctl edit`): hand edits that
    /// change its meaning. Apply leaves them in place, so the host does not
    /// run exactly the template while they exist.
    pub drop_ins: Vec<(String, Vec<String>)>,
    /// Units systemd loads from another file than unitgen's, with that
    /// file (see [`Observed::loaded_elsewhere`]): it runs that one. Apply
    /// leaves it in place, as it does drop-ins.
    pub loaded_elsewhere: Vec<(String, String)>,
    /// An earlier apply stopped before it recorded its revision (killed,
    /// or the state directory could not be written), or another command is
    /// changing the instance right now ([`Plan::changing_now`]): why this
    /// plan cannot say "up to date" even if everything else matches.
    pub unfinished: Option<String>,
    /// A routed service's zero-downtime switch that a killed apply left
    /// (see `systemd::handover`): its stand-in may still run, or the router
    /// still send it the traffic, whatever the units are.
    pub handover_left: Option<String>,
    /// A restore that did not finish (see [`crate::state::Restoring`]): the
    /// instance's data may be half restored, whatever its units run. Apply
    /// cannot mend that, only the restore run again: the plan is not up to
    /// date until then.
    pub restore: Option<String>,
    /// An apply that took the instance's routes away, killed before it
    /// removed the router's copies and the router (see
    /// `state::InstanceState::unrouting`): apply finishes it.
    pub unrouting: Option<String>,
    /// The latest revision does not keep the stand-ins the template's
    /// routed services have (`systemd::handover::STORED`): `restart` and
    /// `rollback` to it would restart them under the router. Apply keeps
    /// them again.
    pub standins_unkept: Option<String>,
    /// Units that something else starts (a timer, `OnFailure=`): apply
    /// installs, changes and removes them, but never starts them.
    pub triggered: Vec<String>,
    /// Units the instance's running backup stopped for its copies (see
    /// [`Plan::held_by_backup`]).
    pub held: Option<Held>,
    /// Files in the instance's state folder this unitgen does not know
    /// (see `InstanceState::unknown_files`): told, not acted on.
    pub unknown_state_files: Option<String>,
    /// What this plan could not compare, and why (a root-only file, read
    /// by a plan as another user): told, so that its "no changes" is not
    /// taken for more than it checked.
    pub unchecked: Vec<String>,
    /// The instance's secrets env files that are missing on the host or hold
    /// other values than its secrets (deleted or edited by hand): the
    /// containers run with what they read at their start, but their next
    /// start (a reboot) would not. Apply writes them again.
    pub stale_secrets: Vec<String>,
    /// Images the next start of a running service, or the backup, needs
    /// that this host no longer has (a `docker rmi` of a running service's
    /// tag, a prune of the backup's helper; see `systemd::observe`):
    /// a reboot would have to pull them, and one that cannot be had (a
    /// registry out of reach, a local build) keeps the service down. Apply
    /// pulls them.
    pub missing_images: Vec<String>,
    /// The copies of the routes' certificate, key and htpasswd files in the
    /// router's folder that are missing or hold something else: the router
    /// serves or checks with them. Apply copies them again.
    pub stale_route_files: Vec<String>,
    /// Running containers with the instance's labels that no unit of it
    /// runs (see [`Observation`]): apply removes them.
    pub stray_containers: Vec<String>,
    /// Units to add that systemd runs all the same: their file was removed
    /// by hand (with or without a `daemon-reload`), and systemd runs what
    /// it loaded before. Apply writes the file and restarts them, as it
    /// does a unit whose file changed since systemd loaded it; a start
    /// would leave that configuration running.
    pub running_without_file: Vec<String>,
    /// Containers under the name of a service's container whose unit does
    /// not run it (stopped, failed, or waiting out `RestartSec=`), with that
    /// unit, whatever their labels: `docker rm -f`, then `docker run --name`
    /// by hand. The unit's start would fail on the name: apply removes
    /// them first.
    pub name_holders: Vec<(String, String)>,
    /// The units whose containers join the instance network: a restart of
    /// the network unit restarts them (they require it), so apply restarts
    /// them in the same batch, to await them and tell them as restarted.
    pub on_network: Vec<String>,
}

/// Units that are down because a backup stopped them for its copies: not
/// drift, since the backup starts them again when it ends (and apply waits
/// for it before it looks at anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub backup: String,
    pub units: Vec<String>,
}

/// What systemd (and Docker) say about one installed unit of the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub unit: String,
    /// `enabled`, `disabled`, `linked` ...
    pub unit_file_state: String,
    pub need_daemon_reload: bool,
    pub active_state: String,
    pub sub_state: String,
    pub drop_ins: Vec<String>,
    /// The file systemd loaded it from, when that is not unitgen's (see
    /// `Host::loaded_elsewhere`).
    pub loaded_from: Option<String>,
    /// It was started before an interrupted apply changed its file, so it
    /// may run the old configuration.
    pub old_configuration: bool,
    /// It runs a container (a service unit) that Docker does not list as
    /// running.
    pub container_missing: bool,
    /// The container it runs (named), which Docker lists as paused.
    pub container_paused: Option<String>,
    /// A restore that did not finish fed this service its dump (see
    /// [`crate::state::Restoring`]), and its restore command still runs in
    /// the container (`backup::restore::READER`): a `docker exec` goes on
    /// when its client dies, reading the dump as far as it came, however
    /// long that takes, while the other services start.
    pub restore_reading: bool,
    /// The instance network its running container is not connected to
    /// (`docker network disconnect`).
    pub container_off_network: Option<String>,
    /// The Docker network an active network unit made, which is gone
    /// (`docker network rm`).
    pub network_missing: Option<String>,
    /// The Docker network of an active network unit that it did not make
    /// as it makes it (see `docker::network_differences`), with how it
    /// differs.
    pub network_differs: Option<(String, Vec<String>)>,
    /// How its running container differs from what its unit's `docker run`
    /// asks (`docker update`, replaced by hand), one phrase each.
    pub container_differs: Vec<String>,
    /// The named volumes its `docker run` mounts that are gone, while it
    /// does not run: its start makes them again, empty.
    pub volumes_missing: Vec<String>,
    /// The named volumes its `docker run` mounts that were made after it
    /// last stopped, while it does not run: not the ones it ran with.
    pub volumes_made_again: Vec<String>,
    /// How the enablement links of it in the unit directory differ from
    /// its `[Install]` section (see `systemd::observe::links_differ`).
    pub links_differ: Option<LinksDiffer>,
}

/// Enablement links (`T.wants/U`, `T.requires/U`, `T.upholds/U`) of a unit
/// that systemd calls enabled, whichever target links it, each as the
/// link's folder (`multi-user.target.wants`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinksDiffer {
    /// The links its `[Install]` section makes that are gone.
    pub missing: Vec<String>,
    /// The links of it that its `[Install]` section does not make.
    pub extra: Vec<String>,
}

impl std::fmt::Display for LinksDiffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `x.target.wants` -> `wanted by x.target`; one in the runtime
        // folder (`/run/systemd/system/x.target.wants`) says where.
        fn by(folder: &str) -> String {
            let (dir, folder) = match folder.rsplit_once('/') {
                Some((dir, folder)) => (Some(dir), folder),
                None => (None, folder),
            };
            let (target, kind) = folder.rsplit_once('.').unwrap_or((folder, ""));
            let verb = match kind {
                "wants" => "wanted",
                "requires" => "required",
                "upholds" => "upheld",
                other => other,
            };
            match dir {
                Some(dir) => format!("{verb} by {target} (a link in {dir})"),
                None => format!("{verb} by {target}"),
            }
        }
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            let missing: Vec<String> = self.missing.iter().map(|f| by(f)).collect();
            parts.push(format!("not {} (its link is gone)", missing.join(", ")));
        }
        if !self.extra.is_empty() {
            let extra: Vec<String> = self.extra.iter().map(|f| by(f)).collect();
            parts.push(format!(
                "{}, which its file does not say (linked by hand?)",
                extra.join(", ")
            ));
        }
        write!(f, "enabled, but {}", parts.join("; "))
    }
}

impl Observed {
    /// The file systemd runs the unit from instead of unitgen's: one of
    /// the same name that an admin (or `systemctl edit --full` of a
    /// runtime unit, a generator) put in a directory systemd reads first.
    /// Not a mask's link to /dev/null, which is told as
    /// [`Fault::Masked`].
    pub fn loaded_elsewhere(&self) -> Option<&str> {
        (self.loaded_from.as_deref()).filter(|_| !self.unit_file_state.starts_with("masked"))
    }

    /// How a unit whose file is as applied differs from it on the host
    /// (drop-ins aside, which apply does not mend): what `plan` repairs and
    /// `status` marks. `triggered`: a timer or a failure starts it, so not
    /// running is its normal state.
    pub fn faults(&self, triggered: bool) -> Vec<Fault> {
        let mut faults = Vec::new();
        // `static`: no [Install] section, nothing to enable.
        // (Loaded from another file, its enablement is that file's.)
        if self.unit_file_state.starts_with("masked") {
            faults.push(Fault::Masked(self.unit_file_state.clone()));
        } else if self.loaded_elsewhere().is_none()
            && !matches!(self.unit_file_state.as_str(), "enabled" | "static")
        {
            faults.push(Fault::NotEnabled(self.unit_file_state.clone()));
        } else if let Some(links) = self
            .links_differ
            .clone()
            .filter(|_| self.loaded_elsewhere().is_none())
        {
            faults.push(Fault::LinksDiffer(links));
        }
        if self.need_daemon_reload {
            faults.push(Fault::NotReloaded);
        }
        // Not running is how a unit a timer starts should be found.
        if !triggered {
            if self.active_state != "active" {
                faults.push(Fault::NotRunning {
                    active: self.active_state.clone(),
                    sub: self.sub_state.clone(),
                });
            } else if self.old_configuration {
                faults.push(Fault::OldConfiguration);
            } else if self.container_missing {
                faults.push(Fault::ContainerMissing);
            } else if let Some(network) = &self.container_off_network {
                faults.push(Fault::ContainerOffNetwork {
                    network: network.clone(),
                });
            } else if let Some(network) = &self.network_missing {
                faults.push(Fault::NetworkMissing {
                    network: network.clone(),
                });
            } else if let Some((network, differences)) = &self.network_differs {
                faults.push(Fault::NetworkDiffers {
                    network: network.clone(),
                    differences: differences.clone(),
                });
            } else if !self.container_differs.is_empty() {
                faults.push(Fault::ContainerDiffers {
                    differences: self.container_differs.clone(),
                });
            }
        }
        // Only its restart ends it (the restore's `docker exec` client
        // died with unitgen, not what it ran in the container).
        if self.restore_reading && self.active_state == "active" && !triggered {
            faults.push(Fault::RestoreReading);
        }
        // Resumed whatever else is done: a restart too needs it.
        if let Some(container) = &self.container_paused
            && self.active_state == "active"
            && !triggered
        {
            faults.push(Fault::ContainerPaused {
                container: container.clone(),
            });
        }
        // Its start or restart makes them.
        if !self.volumes_missing.is_empty() {
            faults.push(Fault::VolumeMissing {
                volumes: self.volumes_missing.clone(),
            });
        }
        if !self.volumes_made_again.is_empty() {
            faults.push(Fault::VolumeMadeAgain {
                volumes: self.volumes_made_again.clone(),
            });
        }
        faults
    }
}

/// What the host makes of an instance: its units (see [`Observed`]), and
/// the running containers with its labels that none of them runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub units: Vec<Observed>,
    pub stray_containers: Vec<String>,
    /// Kept units whose image tag moved (see [`Plan::with_moved`]).
    pub moved: Vec<Moved>,
    /// Images kept units need that the host no longer has (see
    /// [`Plan::missing_images`]).
    pub missing_images: Vec<String>,
    /// Units to add that systemd runs (see [`Plan::running_without_file`]).
    pub running_without_file: Vec<String>,
    /// See [`Plan::name_holders`].
    pub name_holders: Vec<(String, String)>,
    /// See [`Plan::on_network`].
    pub on_network: Vec<String>,
}

/// One way a unit on the host differs from its applied file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Not enabled: it would not start at boot.
    NotEnabled(String),
    /// Enabled, but not by the links its `[Install]` section makes: one
    /// moved to another target's folder, or removed while another stays
    /// (`systemctl is-enabled` says `enabled` all the same). It starts at
    /// boot with what links it, not with its instance. Re-enabling (disable,
    /// enable) makes them as the file says.
    LinksDiffer(LinksDiffer),
    /// Masked (`masked` or `masked-runtime`): systemd will not start it.
    /// An admin's hand, which apply does not undo (it refuses).
    Masked(String),
    /// The file on disk is not what systemd loaded (`daemon-reload` pending).
    NotReloaded,
    /// Present but not running: stopped, failed, or never started.
    NotRunning { active: String, sub: String },
    /// Started before its file last changed: it may run an old configuration.
    OldConfiguration,
    /// The unit is active but its container is not running.
    ContainerMissing,
    /// The unit is active but its container is paused (`docker pause`):
    /// it answers nothing, though Docker lists it as up.
    ContainerPaused { container: String },
    /// The unit is active but its container is not on the instance's
    /// network (`docker network disconnect`): the other services cannot
    /// reach it by name.
    ContainerOffNetwork { network: String },
    /// An active network unit whose network is gone (`docker network rm`):
    /// no service of the instance can start. Its restart makes it again,
    /// and restarts the services, which require it.
    NetworkMissing { network: String },
    /// An active network unit whose network is not as it makes it: made
    /// again by hand under its name, with other settings. Its start keeps
    /// any network of the name; its restart removes it (its services
    /// stopped first) and makes it again.
    NetworkDiffers {
        network: String,
        differences: Vec<String>,
    },
    /// The unit is active but its container is not what its `docker run`
    /// asks: its limits changed (`docker update`), or it was replaced by
    /// hand. A restart gives it a new container.
    ContainerDiffers { differences: Vec<String> },
    /// Named volumes of a service that does not run are gone (`docker
    /// volume rm`, `docker volume prune`): its start makes them again,
    /// empty. Told, not mended: the data is gone.
    VolumeMissing { volumes: Vec<String> },
    /// Named volumes of a service that does not run were made after it
    /// last stopped (`docker volume rm`, then `docker volume create` or
    /// another container's start): its start mounts them as they are, not
    /// the data it ran with. Told, not mended.
    VolumeMadeAgain { volumes: Vec<String> },
    /// A restore that did not finish was feeding its container its dump,
    /// and its restore command still runs: see [`Observed::restore_reading`].
    RestoreReading,
    /// A routes unit is active but the routes file it wrote is missing or
    /// was changed: the router does not route as applied.
    RoutesNotWritten,
    /// A routes unit is active but the keys it wrote in etcd are missing
    /// or were changed: no host's router routes the instance as applied.
    RoutesNotInEtcd,
    /// A routes unit is active and its routes file as written, but the
    /// host's router does not serve it (it serves an older one): it takes
    /// no change while a file in its folder cannot be read. `why`: what it
    /// answered, and the files to suspect.
    RoutesNotServed { why: String },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::NotEnabled(state) if state.is_empty() => f.write_str("not enabled"),
            Fault::NotEnabled(state) => write!(f, "not enabled ({state})"),
            Fault::LinksDiffer(links) => links.fmt(f),
            Fault::Masked(state) => write!(
                f,
                "{state}: systemd will not start it; apply does not undo a mask (`systemctl unmask`)"
            ),
            Fault::NotReloaded => f.write_str("file changed since systemd loaded it"),
            Fault::NotRunning { active, sub } => write!(f, "{active} ({sub})"),
            Fault::OldConfiguration => {
                f.write_str("may run an old configuration (an apply was interrupted)")
            }
            Fault::ContainerMissing => f.write_str("its container is not running"),
            Fault::ContainerPaused { container } => {
                write!(f, "its container {container} is paused")
            }
            Fault::ContainerOffNetwork { network } => {
                write!(f, "its container is not on network {network}")
            }
            Fault::RestoreReading => f.write_str(
                "the restore that did not finish still reads its dump into it, cut short",
            ),
            Fault::NetworkMissing { network } => write!(f, "its network {network} is gone"),
            Fault::NetworkDiffers {
                network,
                differences,
            } => write!(
                f,
                "its network {network} is not as it makes it (made again by hand?): {}",
                differences.join(", ")
            ),
            Fault::ContainerDiffers { differences } => {
                write!(f, "its container differs: {}", differences.join("; "))
            }
            Fault::VolumeMissing { volumes } => write!(
                f,
                "its volume{} {} {} gone: its start makes {} again, EMPTY",
                if volumes.len() == 1 { "" } else { "s" },
                volumes.join(", "),
                if volumes.len() == 1 { "is" } else { "are" },
                if volumes.len() == 1 { "it" } else { "them" }
            ),
            Fault::VolumeMadeAgain { volumes } => write!(
                f,
                "its volume{} {} {} made again since it last stopped: its start mounts {} as \
                 {}, not the data it ran with",
                if volumes.len() == 1 { "" } else { "s" },
                volumes.join(", "),
                if volumes.len() == 1 { "was" } else { "were" },
                if volumes.len() == 1 { "it" } else { "them" },
                if volumes.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            ),
            Fault::RoutesNotWritten => {
                f.write_str("its routes file is missing or was changed by hand")
            }
            Fault::RoutesNotInEtcd => {
                f.write_str("its routes in etcd are missing or were changed by hand")
            }
            Fault::RoutesNotServed { why } => write!(
                f,
                "the router does not serve its routes file as written ({why})"
            ),
        }
    }
}

/// A unit to repair and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub unit: String,
    pub faults: Vec<Fault>,
}

impl Repair {
    pub fn enable(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f, Fault::NotEnabled(_)))
    }

    pub fn reload(&self) -> bool {
        self.faults.contains(&Fault::NotReloaded)
    }

    /// Enabled by other links than its file says: disabled (every link of
    /// it goes) and enabled again.
    pub fn relink(&self) -> bool {
        (self.faults.iter()).any(|f| matches!(f, Fault::LinksDiffer(_)))
    }

    /// Not running (stopped, failed, or waiting to be restarted).
    fn not_running(&self) -> bool {
        (self.faults.iter()).any(|f| matches!(f, Fault::NotRunning { .. }))
    }

    /// Not running: a start (after any reload) runs the file as it is.
    pub fn start(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f, Fault::NotRunning { sub, .. } if sub != "auto-restart"))
    }

    /// Running, but not what its file says: only a restart fixes that. Or
    /// waiting out its `RestartSec=` after it went down (`activating
    /// (auto-restart)`): systemd holds a start job until its own restart,
    /// which then counts as one more restart (apply would take the repaired
    /// unit for one that did not stay up); a restart starts it at once.
    pub fn restart(&self) -> bool {
        !self.start()
            && self.faults.iter().any(|f| {
                matches!(
                    f,
                    Fault::NotReloaded
                        | Fault::OldConfiguration
                        | Fault::ContainerMissing
                        | Fault::ContainerOffNetwork { .. }
                        | Fault::ContainerDiffers { .. }
                        | Fault::NetworkMissing { .. }
                        | Fault::NetworkDiffers { .. }
                        | Fault::RestoreReading
                ) || matches!(f, Fault::NotRunning { sub, .. } if sub == "auto-restart")
            })
    }

    /// Its container is paused: apply resumes it (before any restart: a
    /// frozen container cannot act on its stop signal).
    pub fn paused_container(&self) -> Option<&str> {
        self.faults.iter().find_map(|f| match f {
            Fault::ContainerPaused { container } => Some(container.as_str()),
            _ => None,
        })
    }

    /// Running, but its routes file is not what it wrote: a reload writes
    /// it again (see [`reloads_on_change`]).
    pub fn rewrite(&self) -> bool {
        !self.start()
            && (self.faults.iter()).any(|f| {
                matches!(
                    f,
                    Fault::RoutesNotWritten
                        | Fault::RoutesNotInEtcd
                        | Fault::RoutesNotServed { .. }
                )
            })
    }

    /// What apply will do, e.g. `enable, start`.
    pub fn actions(&self) -> String {
        let mut actions = Vec::new();
        if self.enable() {
            actions.push("enable");
        }
        if self.relink() {
            actions.push("re-enable");
        }
        if self.reload() {
            actions.push("reload");
        }
        if self.start() {
            actions.push("start");
        }
        if self.restart() {
            actions.push("restart");
        }
        if self.rewrite() {
            actions.push("reload: write the routes again");
        }
        if self.paused_container().is_some() {
            actions.push("unpause");
        }
        actions.join(", ")
    }
}

impl Plan {
    pub fn new(installed: &[UnitFile], desired: &[UnitFile]) -> Plan {
        let mut plan = Plan::default();
        for unit in desired.iter().chain(installed) {
            if !started_by_apply(unit) && !plan.triggered.contains(&unit.name) {
                plan.triggered.push(unit.name.clone());
            }
        }
        for unit in desired {
            match installed.iter().find(|i| i.name == unit.name) {
                None => plan.add.push(unit.clone()),
                Some(old) if old.text == unit.text => plan.keep.push(unit.name.clone()),
                Some(old) => plan.change.push(Changed {
                    old: old.clone(),
                    new: unit.clone(),
                }),
            }
        }
        for unit in installed {
            if !desired.iter().any(|d| d.name == unit.name) {
                plan.remove.push(unit.clone());
            }
            if !digest_matches(&unit.text) {
                plan.hand_edited.push(unit.name.clone());
            }
        }
        plan
    }

    /// Marks unchanged units whose image moved (see [`crate::pull::moved`]):
    /// they are restarted rather than kept.
    pub fn with_moved(mut self, moved: Vec<Moved>) -> Plan {
        self.keep
            .retain(|unit| !moved.iter().any(|m| &m.unit == unit));
        self.moved = moved;
        self
    }

    /// Another command holds the instance's lock (see
    /// [`crate::state::InstanceState::changing_now`]): the records of a
    /// command under way are not told as left unfinished, only `note`.
    pub fn changing_now(&mut self, note: String) {
        self.unfinished = Some(note);
        self.handover_left = None;
        self.restore = None;
    }

    /// Of `units`, those apply starts or restarts itself.
    pub fn started_by_apply(&self, units: &[String]) -> Vec<String> {
        units
            .iter()
            .filter(|u| !self.triggered.contains(u))
            .cloned()
            .collect()
    }

    /// No unit file to add, change or remove, no image moved (the host's
    /// state aside).
    pub fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.change.is_empty()
            && self.remove.is_empty()
            && self.moved.is_empty()
    }

    /// Whether nothing of the instance is installed yet (a first apply).
    pub fn installs_from_nothing(&self) -> bool {
        self.keep.is_empty()
            && self.change.is_empty()
            && self.remove.is_empty()
            && self.moved.is_empty()
    }

    /// The host runs exactly these units: files, systemd's state and the
    /// record all match. Only then does `plan` say "up to date".
    pub fn is_up_to_date(&self) -> bool {
        self.is_empty()
            && self.repair.is_empty()
            && self.drop_ins.is_empty()
            && self.loaded_elsewhere.is_empty()
            && self.unfinished.is_none()
            && self.handover_left.is_none()
            && self.restore.is_none()
            && self.unrouting.is_none()
            && self.standins_unkept.is_none()
            && self.stale_secrets.is_empty()
            && self.missing_images.is_empty()
            && self.stale_route_files.is_empty()
            && self.stray_containers.is_empty()
            && self.name_holders.is_empty()
    }

    /// Takes the units `backup` stopped or paused (and will resume) out of
    /// the repairs: their not running is the backup's doing. Only a stopped
    /// or starting unit, or a paused container, is held: a failed one
    /// failed by itself, and its other faults (not enabled, not reloaded)
    /// stay.
    pub fn held_by_backup(&mut self, backup: &str, held_units: &[String]) {
        let mut held = Vec::new();
        for repair in &mut self.repair {
            if !held_units.contains(&repair.unit) {
                continue;
            }
            let before = repair.faults.len();
            repair.faults.retain(|fault| match fault {
                Fault::NotRunning { active, .. } => {
                    !matches!(active.as_str(), "inactive" | "activating" | "deactivating")
                }
                Fault::ContainerPaused { .. } => false,
                _ => true,
            });
            if repair.faults.len() < before {
                held.push(repair.unit.clone());
            }
        }
        self.repair.retain(|repair| !repair.faults.is_empty());
        if !held.is_empty() {
            self.held = Some(Held {
                backup: backup.to_string(),
                units: held,
            });
        }
    }

    /// Adds what systemd says about the plan's installed units: faults to
    /// repair on units whose file stays (a changed unit is restarted
    /// anyway, so only its enablement counts), and drop-ins.
    pub fn observe(&mut self, observed: &[Observed]) {
        for seen in observed {
            let kept = self.keep.contains(&seen.unit);
            let changed = self.change.iter().any(|c| c.new.name == seen.unit)
                || self.moved.iter().any(|m| m.unit == seen.unit);
            if !kept && !changed {
                continue;
            }
            let faults = if kept {
                Observed::faults(seen, self.triggered.contains(&seen.unit))
            } else {
                // Restarted anyway: only what its restart does not mend,
                // and what it does that should be told.
                (Observed::faults(seen, true).into_iter())
                    .filter(|f| {
                        matches!(
                            f,
                            Fault::NotEnabled(_)
                                | Fault::Masked(_)
                                | Fault::VolumeMissing { .. }
                                | Fault::VolumeMadeAgain { .. }
                        )
                    })
                    .collect()
            };
            if !faults.is_empty() {
                self.repair.push(Repair {
                    unit: seen.unit.clone(),
                    faults,
                });
            }
            if !seen.drop_ins.is_empty() {
                self.drop_ins
                    .push((seen.unit.clone(), seen.drop_ins.clone()));
            }
            if let Some(file) = seen.loaded_elsewhere() {
                self.loaded_elsewhere
                    .push((seen.unit.clone(), file.to_string()));
            }
        }
    }

    /// The units that are masked (see [`Fault::Masked`]): apply refuses.
    pub fn masked(&self) -> Vec<String> {
        (self.repair.iter())
            .filter(|r| r.faults.iter().any(|f| matches!(f, Fault::Masked(_))))
            .map(|r| r.unit.clone())
            .collect()
    }

    /// Units apply enables: the new ones and those found not enabled.
    pub fn to_enable(&self) -> Vec<String> {
        self.new_and_repaired(Repair::enable)
    }

    /// Kept units apply disables and enables again, for their links to be
    /// as their files say (see [`Fault::LinksDiffer`]).
    pub fn to_relink(&self) -> Vec<String> {
        (self.repair.iter())
            .filter(|r| r.relink())
            .map(|r| r.unit.clone())
            .collect()
    }

    /// Units apply starts: the new ones (but those systemd runs without
    /// their file, restarted) and those found not running.
    pub fn to_start(&self) -> Vec<String> {
        let mut units = self.new_and_repaired(Repair::start);
        units.retain(|unit| !self.running_without_file.contains(unit));
        units
    }

    /// The new units, the changed ones a change starts rather than restarts
    /// and the units whose repair `needs`, of those apply starts itself.
    fn new_and_repaired(&self, needs: fn(&Repair) -> bool) -> Vec<String> {
        let mut units: Vec<String> = self.add.iter().map(|u| u.name.clone()).collect();
        units.extend(
            (self.repair.iter())
                .filter(|r| needs(r))
                .map(|r| r.unit.clone()),
        );
        units.extend(
            (self.change.iter())
                .filter(|c| c.only_started())
                .map(|c| c.new.name.clone()),
        );
        self.started_by_apply(&units)
    }

    /// Units apply restarts: the changed ones (but those it reloads), those
    /// whose image moved and those that run something other than their file.
    pub fn to_restart(&self) -> Vec<String> {
        let repaired = self.repair.iter().filter(|r| r.restart());
        let mut units: Vec<String> = (self.change.iter())
            .filter(|c| !reloads_on_change(&c.new.text) && !c.only_started())
            .map(|c| c.new.name.clone())
            .collect();
        units.extend(self.moved.iter().map(|m| m.unit.clone()));
        units.extend(repaired.map(|r| r.unit.clone()));
        units.extend(self.running_without_file.iter().cloned());
        // A network unit restarted for its network (gone, made again by
        // hand) restarts the services on it: awaited as apply's own.
        let network_restarted = (self.repair.iter()).any(|r| {
            r.restart()
                && r.faults.iter().any(|f| {
                    matches!(
                        f,
                        Fault::NetworkMissing { .. } | Fault::NetworkDiffers { .. }
                    )
                })
        });
        if network_restarted {
            let starting = self.to_start();
            units.extend(
                (self.on_network.iter())
                    .filter(|unit| !units.contains(unit) && !starting.contains(unit))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        self.started_by_apply(&units)
    }

    /// Changed units apply reloads (see [`reloads_on_change`]), and routes
    /// units whose file is not as they wrote it.
    pub fn to_reload(&self) -> Vec<String> {
        let mut units: Vec<String> = (self.change.iter())
            .filter(|c| reloads_on_change(&c.new.text))
            .map(|c| c.new.name.clone())
            .collect();
        let rewritten = self.repair.iter().filter(|r| r.rewrite());
        units.extend(rewritten.map(|r| r.unit.clone()));
        self.started_by_apply(&units)
    }

    /// Adds a fault of the kept unit `unit` that systemd does not show: a
    /// file it wrote that is gone ([`Fault::RoutesNotWritten`]), a restart
    /// an apply was killed before ([`Fault::OldConfiguration`]). Nothing to
    /// add when the unit is not running: its start repairs both.
    pub fn found(&mut self, unit: &str, fault: Fault) {
        if !self.keep.iter().any(|k| k == unit) {
            return;
        }
        match self.repair.iter_mut().find(|r| r.unit == unit) {
            Some(repair) if repair.not_running() || repair.faults.contains(&fault) => {}
            Some(repair) => repair.faults.push(fault),
            None => self.repair.push(Repair {
                unit: unit.to_string(),
                faults: vec![fault],
            }),
        }
    }

    /// One line: how many units are added, changed, removed, repaired and
    /// kept.
    pub fn summary(&self) -> String {
        if self.is_up_to_date() {
            format!(
                "no changes: {} up to date",
                crate::progress::count(self.keep.len(), "unit")
            )
        } else {
            let moved = if self.moved.is_empty() {
                String::new()
            } else {
                format!("{} to restart (image moved), ", self.moved.len())
            };
            let repair = if self.repair.is_empty() {
                String::new()
            } else {
                format!("{} to repair, ", self.repair.len())
            };
            format!(
                "{} to add, {} to change, {} to remove, {moved}{repair}{} unchanged",
                self.add.len(),
                self.change.len(),
                self.remove.len(),
                self.keep.len()
                    - self
                        .repair
                        .iter()
                        .filter(|r| self.keep.contains(&r.unit))
                        .count()
            )
        }
    }

    /// The plan as a reviewer reads it: one line per unit, then the diff of
    /// every changed unit. `color` adds ANSI colours (for a terminal).
    pub fn describe(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        let (units, notes) = self.entries();
        // Unit names, container names, images, paths and faults come from
        // the host (Docker, systemd, the unit folder): the text after the
        // sign is shown as every value is, never obeyed by the terminal,
        // and stays its one line (a drop-in's name can hold a line feed).
        let line = |out: &mut String, entry: &Entry| {
            let sign = paint(entry.color, entry.sign);
            let _ = writeln!(out, "{sign} {}", shown(&entry.text()));
        };
        units.iter().for_each(|entry| line(&mut out, entry));
        let _ = writeln!(out, "{}", self.summary());
        notes.iter().for_each(|entry| line(&mut out, entry));
        for change in &self.change {
            out.push('\n');
            out.push_str(&unified_diff(&change.old, &change.new, color));
        }
        out
    }

    /// The plan for a script (`plan --json`): whether it is up to date, the
    /// summary, one entry per unit apply acts on (`op`: add, change, remove,
    /// repair; `unit`; `what` apply does and why, as `plan` words it), the
    /// notes (`!` warnings, `i` information) and each changed unit's diff.
    pub fn to_json(&self) -> serde_json::Value {
        let (units, notes) = self.entries();
        serde_json::json!({
            "up_to_date": self.is_up_to_date(),
            "summary": self.summary(),
            "units": units.iter().map(|entry| serde_json::json!({
                "op": match entry.sign {
                    "+" => "add",
                    "-" => "remove",
                    "*" => "repair",
                    _ => "change",
                },
                "unit": entry.unit,
                "what": entry.what,
            })).collect::<Vec<_>>(),
            "notes": notes.iter().map(|entry| serde_json::json!({
                "sign": entry.sign,
                "text": entry.what,
            })).collect::<Vec<_>>(),
            "diffs": self.change.iter().map(|change| serde_json::json!({
                "unit": change.new.name,
                "diff": unified_diff(&change.old, &change.new, false),
            })).collect::<Vec<_>>(),
        })
    }

    /// What `describe` shows before its summary line (the units apply acts
    /// on) and after it (notes), in that order.
    fn entries(&self) -> (Vec<Entry>, Vec<Entry>) {
        let mut units = Vec::new();
        let mut unit = |color, sign, unit: &str, what: String| {
            units.push(Entry {
                sign,
                color,
                unit: Some(unit.to_string()),
                what,
            });
        };
        for added in &self.add {
            let what = if self.triggered.contains(&added.name) {
                "new: install; started by its trigger"
            } else if self.running_without_file.contains(&added.name) {
                RUNNING_WITHOUT_FILE
            } else {
                "new: enable and start"
            };
            unit("32", "+", &added.name, what.to_string());
        }
        for change in &self.change {
            let secrets = changed_secrets(&change.old.text, &change.new.text);
            let because = if secrets.is_empty() {
                String::new()
            } else {
                format!("; new value of {}", secrets.join(", "))
            };
            let what = if self.triggered.contains(&change.new.name) {
                "changed: rewrite; runs the new text next time"
            } else if routing_only(&change.old.text, &change.new.text) {
                ROUTING_REWRITE
            } else if is_routed(&change.new.text) {
                ROUTED_REPLACE
            } else if reloads_on_change(&change.new.text) {
                ROUTES_RELOAD
            } else if starts_on_change(&change.new.text) {
                NETWORK_REWRITE
            } else {
                "changed: restart"
            };
            unit("33", "~", &change.new.name, format!("{what}{because}"));
        }
        for moved in &self.moved {
            let what = format!("image {} moved: restart onto it", moved.image);
            unit("33", "~", &moved.unit, what);
        }
        for removed in &self.remove {
            let what = "removed: stop, disable, delete".to_string();
            unit("31", "-", &removed.name, what);
        }
        for repair in &self.repair {
            let faults: Vec<String> = repair.faults.iter().map(ToString::to_string).collect();
            // (A changed unit's missing volume: its restart is above.)
            let actions = match repair.actions() {
                actions if actions.is_empty() => String::new(),
                actions => format!(": {actions}"),
            };
            unit(
                "33",
                "*",
                &repair.unit,
                format!("{}{actions}", faults.join(", ")),
            );
        }

        let mut notes = Vec::new();
        let mut note = |color, sign, what: String| {
            notes.push(Entry {
                sign,
                color,
                unit: None,
                what,
            });
        };
        if let Some(held) = &self.held {
            note(
                "36",
                "i",
                format!(
                    "{} stopped or paused by the running backup ({}) for its copies: it \
                 resumes {} when it ends, and apply waits for it",
                    held.units.join(", "),
                    held.backup,
                    if held.units.len() == 1 { "it" } else { "them" },
                ),
            );
        }
        if let Some(unknown) = &self.unknown_state_files {
            note("33", "i", unknown.clone());
        }
        for unchecked in &self.unchecked {
            note("33", "?", format!("not checked: {unchecked}"));
        }
        for file in &self.stale_secrets {
            note(
                "31",
                "!",
                format!(
                    "secrets file {file} is missing or was changed by hand: applying writes it \
                 again (the running containers read it at their start; their next start needs it)"
                ),
            );
        }
        for image in &self.missing_images {
            note(
                "31",
                "!",
                format!(
                    "image {image} is not on this host any more (removed by hand?): the next \
                 start of what runs it must pull it; applying pulls it"
                ),
            );
        }
        for container in &self.stray_containers {
            note(
                "31",
                "!",
                format!(
                    "container {container} runs with the instance's labels, but no unit of it \
                 runs it (started by hand?): applying removes it"
                ),
            );
        }
        for (container, unit) in &self.name_holders {
            note(
                "31",
                "!",
                format!(
                    "container {container} {}: applying removes it",
                    NAME_HOLDER.replace("{unit}", unit)
                ),
            );
        }
        for file in &self.stale_route_files {
            note(
                "31",
                "!",
                format!(
                    "the router's copy of {file} is missing or was changed by hand: applying \
                 copies it again"
                ),
            );
        }
        for why in (self.unfinished.iter())
            .chain(&self.handover_left)
            .chain(&self.restore)
            .chain(&self.unrouting)
            .chain(&self.standins_unkept)
        {
            note("31", "!", why.to_string());
        }
        for (unit, paths) in &self.drop_ins {
            note(
                "31",
                "!",
                format!(
                    "{unit} has drop-ins that change its meaning: {} (hand edits, e.g. `systemctl edit`: \
                 apply leaves them in place; move the setting into the template and delete them)",
                    paths.join(", ")
                ),
            );
        }
        for (unit, file) in &self.loaded_elsewhere {
            note(
                "31",
                "!",
                format!("{unit} is loaded from {file}: {LOADED_ELSEWHERE}"),
            );
        }
        for name in &self.hand_edited {
            note(
                "31",
                "!",
                format!(
                    "{name} was edited by hand since unitgen wrote it: applying overwrites the edit"
                ),
            );
        }
        (units, notes)
    }
}

/// One line of a plan: a unit apply acts on (`+ NAME (WHAT)`), or a note
/// (`! WHAT`).
struct Entry {
    sign: &'static str,
    /// Its sign's ANSI colour on a terminal.
    color: &'static str,
    unit: Option<String>,
    what: String,
}

impl Entry {
    /// As `plan` prints it after the sign.
    fn text(&self) -> String {
        match &self.unit {
            Some(unit) => format!("{unit} ({})", self.what),
            None => self.what.clone(),
        }
    }
}

/// The variables whose secret has a new value in `new`, told by the digests
/// of their `Secret=VARIABLE SECRET DIGEST` lines (a unit holds no value).
fn changed_secrets(old: &str, new: &str) -> Vec<String> {
    fn by_variable(text: &str) -> std::collections::BTreeMap<&str, &str> {
        text.lines()
            .filter_map(|line| line.strip_prefix("Secret="))
            .filter_map(|rest| rest.split_once(' '))
            .collect()
    }
    let old = by_variable(old);
    by_variable(new)
        .into_iter()
        .filter(|(variable, rest)| old.get(variable).is_some_and(|before| before != rest))
        .map(|(variable, _)| format!("secret {variable}"))
        .collect()
}

/// A unified diff of one unit, `git diff` style. The `Digest=` line is left
/// out: it changes whenever anything above it does, so it would add a hunk
/// to every diff and tell the reviewer nothing.
pub fn unified_diff(old: &UnitFile, new: &UnitFile, color: bool) -> String {
    let (old_text, new_text) = (without_digest(&old.text), without_digest(&new.text));
    let diff = TextDiff::from_lines(old_text, new_text);
    let mut out = String::new();
    let header = format!("--- {}\n+++ {}\n", shown(&old.name), shown(&new.name));
    out.push_str(&if color {
        format!("\x1b[1m{header}\x1b[0m")
    } else {
        header
    });
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        let head = hunk.header().to_string();
        let _ = writeln!(
            out,
            "{}",
            if color {
                format!("\x1b[36m{head}\x1b[0m")
            } else {
                head
            }
        );
        for change in hunk.iter_changes() {
            let (sign, code) = match change.tag() {
                ChangeTag::Delete => ("-", "31"),
                ChangeTag::Insert => ("+", "32"),
                ChangeTag::Equal => (" ", ""),
            };
            // The host's text may be a hand edit, or a unit an earlier
            // unitgen wrote with a character a terminal obeys: shown, not
            // obeyed (tabs kept).
            let line = format!("{sign}{}", printable(change.value().trim_end_matches('\n')));
            if color && !code.is_empty() {
                let _ = writeln!(out, "\x1b[{code}m{line}\x1b[0m");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// A unit's text up to its `Digest=` line (the whole text if it has none).
fn without_digest(text: &str) -> &str {
    match text.rfind(&format!("\n{}", crate::render::DIGEST_KEY)) {
        Some(pos) => &text[..=pos],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service becoming routed (or giving its route up) changed only
    /// `Routed=` and its comment, yet apply restarted it, and requests
    /// through the router failed while a domain moved to it.
    #[test]
    fn a_change_of_routing_alone_keeps_the_service_running() {
        let unit = |routed: &str, exec: &str| UnitFile {
            name: "blog-live-web.service".into(),
            text: format!(
                "[Service]\nExecStart={exec}\n\n[X-Unitgen]\nApp=blog\nInstance=live\n{routed}Digest=sha256:{}\n",
                routed.len()
            ),
        };
        let routed = "# Routed by the host's router\nRouted=8000\n";
        for (old, new) in [("", routed), (routed, "")] {
            let plan = Plan::new(&[unit(old, "run")], &[unit(new, "run")]);
            assert_eq!(plan.to_restart(), Vec::<String>::new());
            assert_eq!(plan.to_start(), ["blog-live-web.service"]);
            assert!(plan.describe(false).contains(ROUTING_REWRITE));
        }
        // What it runs changed too: restarted.
        let plan = Plan::new(&[unit("", "run")], &[unit(routed, "run --new")]);
        assert_eq!(plan.to_restart(), ["blog-live-web.service"]);
    }

    /// The router answered the file's mark with anything but 418: not up
    /// to date, and apply writes the file again (then waits for the router
    /// to serve it, or fails saying why).
    #[test]
    fn routes_the_router_does_not_serve_are_written_again_not_up_to_date() {
        let routes = "[Service]\nExecReload=/bin/true\n\n[X-Unitgen]\nRoutes=/r/a.yaml\n";
        let mut plan = Plan::new(
            &[unit("a-routes.service", routes)],
            &[unit("a-routes.service", routes)],
        );
        assert!(plan.is_up_to_date());
        let why = "asked for the file's mark on 127.0.0.1:80, it answered 404".to_string();
        plan.found("a-routes.service", Fault::RoutesNotServed { why });
        assert!(!plan.is_up_to_date());
        assert_eq!(plan.to_reload(), ["a-routes.service"]);
        assert!(plan.to_start().is_empty() && plan.to_restart().is_empty());
        let said = plan.describe(false);
        assert!(
            said.contains("the router does not serve its routes file as written (asked for the file's mark on 127.0.0.1:80, it answered 404): reload: write the routes again"),
            "{said}"
        );
    }

    #[test]
    fn a_routes_file_not_as_written_is_rewritten_by_a_reload_unless_a_start_writes_it() {
        let routes = "[Service]\nExecReload=/bin/true\n\n[X-Unitgen]\nRoutes=/r/a.yaml\n";
        let mut plan = Plan::new(
            &[unit("a-routes.service", routes)],
            &[unit("a-routes.service", routes)],
        );
        plan.found("a-routes.service", Fault::RoutesNotWritten);
        plan.found("not-kept.service", Fault::RoutesNotWritten);
        assert_eq!(plan.to_reload(), ["a-routes.service"]);
        assert!(plan.to_start().is_empty() && plan.to_restart().is_empty());
        assert!(!plan.is_up_to_date());

        let mut stopped = Plan::new(
            &[unit("a-routes.service", routes)],
            &[unit("a-routes.service", routes)],
        );
        stopped.observe(&[Observed {
            unit: "a-routes.service".into(),
            unit_file_state: "enabled".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            ..Observed::default()
        }]);
        stopped.found("a-routes.service", Fault::RoutesNotWritten);
        assert_eq!(stopped.to_start(), ["a-routes.service"]);
        assert!(stopped.to_reload().is_empty());
    }

    #[test]
    fn a_running_backup_holds_only_the_units_it_stopped_and_only_their_stop() {
        let not_running = |active: &str| Fault::NotRunning {
            active: active.into(),
            sub: "dead".into(),
        };
        let mut plan = Plan {
            keep: vec!["db".into(), "web".into(), "cache".into(), "log".into()],
            repair: vec![
                Repair {
                    unit: "db".into(),
                    faults: vec![not_running("inactive")],
                },
                Repair {
                    unit: "cache".into(),
                    faults: vec![not_running("failed")],
                },
                Repair {
                    unit: "log".into(),
                    faults: vec![
                        Fault::NotEnabled("disabled".into()),
                        not_running("inactive"),
                    ],
                },
                Repair {
                    unit: "web".into(),
                    faults: vec![not_running("inactive")],
                },
                Repair {
                    unit: "files".into(),
                    faults: vec![Fault::ContainerPaused {
                        container: "x-files".into(),
                    }],
                },
            ],
            ..Plan::default()
        };
        plan.held_by_backup(
            "b",
            &["db".into(), "cache".into(), "log".into(), "files".into()],
        );
        assert_eq!(
            plan.held,
            Some(Held {
                backup: "b".into(),
                units: vec!["db".into(), "log".into(), "files".into()],
            })
        );
        let left: Vec<(&str, &[Fault])> = (plan.repair.iter())
            .map(|r| (r.unit.as_str(), r.faults.as_slice()))
            .collect();
        assert_eq!(
            left,
            [
                ("cache", &[not_running("failed")][..]),
                ("log", &[Fault::NotEnabled("disabled".into())][..]),
                ("web", &[not_running("inactive")][..]),
            ]
        );
        assert!(!plan.is_up_to_date());
    }

    fn unit(name: &str, text: &str) -> UnitFile {
        UnitFile {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn sorts_units_into_add_change_remove_keep() {
        let installed = [unit("a", "1\n"), unit("b", "1\n"), unit("c", "1\n")];
        let desired = [unit("a", "1\n"), unit("b", "2\n"), unit("d", "1\n")];
        let plan = Plan::new(&installed, &desired);
        assert_eq!(plan.keep, ["a"]);
        assert_eq!(plan.change[0].new.name, "b");
        assert_eq!(plan.remove[0].name, "c");
        assert_eq!(plan.add[0].name, "d");
        assert!(!plan.is_empty());
        assert!(Plan::new(&installed, &installed).is_empty());
    }

    #[test]
    fn units_a_timer_starts_are_installed_but_never_started_by_apply() {
        let owned = |extra: &str| {
            format!("[Service]\nType=oneshot\n\n[X-Unitgen]\nApp=blog\nInstance=live\n{extra}")
        };
        let backup = unit(
            "blog-live-backup.service",
            &owned("StartedBy=blog-live-backup.timer\n"),
        );
        let timer = unit("blog-live-backup.timer", &owned(""));
        let plan = Plan::new(&[], &[backup.clone(), timer]);
        assert_eq!(plan.triggered, ["blog-live-backup.service"]);
        assert_eq!(
            plan.started_by_apply(&[
                "blog-live-backup.service".into(),
                "blog-live-backup.timer".into()
            ]),
            ["blog-live-backup.timer"]
        );
        assert!(
            plan.describe(false)
                .contains("+ blog-live-backup.service (new: install; started by its trigger)")
        );
        // Still recognized when only installed (being removed).
        assert_eq!(
            Plan::new(&[backup], &[]).triggered,
            ["blog-live-backup.service"]
        );
    }

    #[test]
    fn notices_units_edited_by_hand() {
        let good = UnitFile {
            name: "a.service".into(),
            text: format!("[Unit]\n{}", crate::render::DIGEST_KEY)
                + &crate::render::content_digest(b"[Unit]\n")
                + "\n",
        };
        let mut edited = good.clone();
        edited.text = edited.text.replace("[Unit]", "[Unit]\nNice=5");
        assert!(
            Plan::new(std::slice::from_ref(&good), std::slice::from_ref(&good))
                .hand_edited
                .is_empty()
        );
        let plan = Plan::new(&[edited], &[good]);
        assert_eq!(plan.hand_edited, ["a.service"]);
        assert!(
            plan.describe(false)
                .contains("! a.service was edited by hand")
        );
    }

    fn seen(unit: &str) -> Observed {
        Observed {
            unit: unit.into(),
            unit_file_state: "enabled".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            ..Observed::default()
        }
    }

    #[test]
    fn a_host_that_runs_exactly_the_files_is_up_to_date() {
        let units = [unit("a", "1\n"), unit("b", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[seen("a"), seen("b")]);
        assert!(plan.is_up_to_date(), "{plan:?}");
        assert_eq!(plan.summary(), "no changes: 2 units up to date");
    }

    #[test]
    fn units_not_enabled_stopped_or_not_reloaded_are_repaired() {
        let units = [unit("a", "1\n"), unit("b", "1\n"), unit("c", "1\n")];
        let mut plan = Plan::new(&units, &units);
        let disabled = Observed {
            unit_file_state: "disabled".into(),
            ..seen("a")
        };
        let failed = Observed {
            active_state: "failed".into(),
            sub_state: "failed".into(),
            ..seen("b")
        };
        let stale = Observed {
            need_daemon_reload: true,
            ..seen("c")
        };
        plan.observe(&[disabled, failed, stale]);
        assert!(!plan.is_up_to_date());
        assert_eq!(plan.to_enable(), ["a"]);
        assert_eq!(plan.to_start(), ["b"]);
        assert_eq!(plan.to_restart(), ["c"]);
        assert!(plan.masked().is_empty());
        let text = plan.describe(false);
        assert!(
            text.contains("* a (not enabled (disabled): enable)"),
            "{text}"
        );
        assert!(text.contains("* b (failed (failed): start)"), "{text}");
        assert!(
            text.contains("* c (file changed since systemd loaded it: reload, restart)"),
            "{text}"
        );
        assert!(text.contains("3 to repair, 0 unchanged"), "{text}");
    }

    #[test]
    fn a_masked_unit_is_told_and_left_to_the_admin() {
        let units = [unit("a", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[Observed {
            unit_file_state: "masked".into(),
            ..seen("a")
        }]);
        assert_eq!(plan.masked(), ["a"]);
        assert!(plan.to_enable().is_empty(), "systemd refuses it");
        assert!(!plan.is_up_to_date());
    }

    #[test]
    fn a_unit_waiting_to_be_restarted_by_systemd_is_restarted_not_started() {
        let units = [unit("a", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[Observed {
            active_state: "activating".into(),
            sub_state: "auto-restart".into(),
            ..seen("a")
        }]);
        assert!(plan.to_start().is_empty());
        assert_eq!(plan.to_restart(), ["a"]);
        let text = plan.describe(false);
        assert!(
            text.contains("* a (activating (auto-restart): restart)"),
            "{text}"
        );
    }

    #[test]
    fn a_unit_without_an_install_section_needs_no_enabling() {
        let units = [unit("a", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[Observed {
            unit_file_state: "static".into(),
            ..seen("a")
        }]);
        assert!(plan.is_up_to_date(), "{plan:?}");
    }

    #[test]
    fn old_configurations_missing_containers_and_drop_ins_are_reported() {
        let units = [unit("a", "1\n"), unit("b", "1\n"), unit("c", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[
            Observed {
                old_configuration: true,
                ..seen("a")
            },
            Observed {
                container_missing: true,
                ..seen("b")
            },
            Observed {
                drop_ins: vec!["/etc/systemd/system/c.d/override.conf".into()],
                ..seen("c")
            },
        ]);
        assert_eq!(plan.to_restart(), ["a", "b"]);
        assert!(!plan.is_up_to_date(), "a drop-in is not the template");
        let text = plan.describe(false);
        assert!(
            text.contains(
                "! c has drop-ins that change its meaning: /etc/systemd/system/c.d/override.conf"
            ),
            "{text}"
        );
    }

    // `docker update --memory` on a running container, and a named volume
    // removed while its service was stopped: plan said up to date, and
    // only "start" (the start made the volume again, empty, unsaid).
    #[test]
    fn a_container_not_as_asked_is_restarted_and_a_missing_volume_is_told() {
        let units = [unit("a", "1\n"), unit("b", "1\n"), unit("c", "1\n")];
        let mut plan = Plan::new(&units[..2], &units[..2]);
        plan.observe(&[
            Observed {
                container_differs: vec!["memory 64 MiB, the unit asks for none".into()],
                ..seen("a")
            },
            Observed {
                active_state: "inactive".into(),
                sub_state: "dead".into(),
                volumes_missing: vec!["x-live-data".into()],
                ..seen("b")
            },
        ]);
        assert_eq!(plan.to_restart(), ["a"]);
        assert_eq!(plan.to_start(), ["b"]);
        let text = plan.describe(false);
        assert!(
            text.contains(
                "* a (its container differs: memory 64 MiB, the unit asks for none: restart)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "* b (inactive (dead), its volume x-live-data is gone: its start makes it again, \
                 EMPTY: start)"
            ),
            "{text}"
        );
        // A changed unit is restarted anyway: the volume is still told.
        let mut changed = Plan::new(&[units[2].clone()], &[unit("c", "2\n")]);
        changed.observe(&[Observed {
            active_state: "failed".into(),
            volumes_missing: vec!["x-live-data".into()],
            ..seen("c")
        }]);
        assert_eq!(changed.to_restart(), ["c"]);
        assert!(
            (changed.describe(false)).contains(
                "* c (its volume x-live-data is gone: its start makes it again, EMPTY)\n"
            )
        );
    }

    #[test]
    fn a_changed_unit_is_restarted_anyway_but_enabled_if_it_was_not() {
        let mut plan = Plan::new(&[unit("a", "1\n")], &[unit("a", "2\n")]);
        plan.observe(&[Observed {
            unit_file_state: "disabled".into(),
            active_state: "failed".into(),
            ..seen("a")
        }]);
        assert_eq!(plan.to_enable(), ["a"]);
        assert!(plan.to_start().is_empty());
        assert_eq!(plan.to_restart(), ["a"]);
    }

    // A changed network unit was restarted, which restarted every service
    // of the instance (they require it) while apply called them untouched.
    #[test]
    fn a_changed_network_unit_is_only_started() {
        let network = |comment: &str| {
            unit(
                "blog-live-network.service",
                &format!("# {comment}\n[X-Unitgen]\nApp=blog\nInstance=live\nNetwork=blog-live\n"),
            )
        };
        let mut plan = Plan::new(&[network("old")], &[network("new")]);
        plan.observe(&[seen("blog-live-network.service")]);
        assert_eq!(plan.to_start(), ["blog-live-network.service"]);
        assert!(plan.to_restart().is_empty());
        let text = plan.describe(false);
        assert!(
            text.contains(&format!("~ blog-live-network.service ({NETWORK_REWRITE})")),
            "{text}"
        );
    }

    #[test]
    fn an_unfinished_apply_is_never_up_to_date() {
        let units = [unit("a", "1\n")];
        let mut plan = Plan::new(&units, &units);
        plan.observe(&[seen("a")]);
        plan.unfinished = Some("an earlier apply did not finish".into());
        assert!(!plan.is_up_to_date());
        assert!(
            plan.describe(false)
                .contains("! an earlier apply did not finish")
        );
        plan.unfinished = None;
        plan.restore = Some("a restore of snapshot 4f3a9c1e did not finish".into());
        assert!(!plan.is_up_to_date());
        assert!(
            plan.describe(false)
                .contains("! a restore of snapshot 4f3a9c1e did not finish")
        );
    }

    #[test]
    fn a_new_secret_value_is_named_without_the_value() {
        let old = "[Service]\n[X-Unitgen]\nSecret=A a hmac-sha256:1\nSecret=B b hmac-sha256:2\n";
        let new = "[Service]\n[X-Unitgen]\nSecret=A a hmac-sha256:1\nSecret=B b hmac-sha256:3\n";
        let text =
            Plan::new(&[unit("db.service", old)], &[unit("db.service", new)]).describe(false);
        assert!(
            text.contains("~ db.service (changed: restart; new value of secret B)"),
            "{text}"
        );
        let other = Plan::new(
            &[unit("db.service", "A=1\n")],
            &[unit("db.service", "A=2\n")],
        );
        assert!(other.describe(false).contains("(changed: restart)\n"));
    }

    /// The host's text (a unit an earlier unitgen wrote with a raw
    /// bidirectional override, a hand edit with an escape sequence) and
    /// names read from the host reached the terminal as they were: plan
    /// printed them raw, and the terminal redrew or reordered the diff.
    #[test]
    fn what_the_host_holds_is_shown_not_obeyed() {
        let installed = [unit(
            "web.service",
            "[Service]\nEnvironment=\"A=x\u{202e}y\"\nB=\u{1b}[2J\u{85}\n",
        )];
        let desired = [unit(
            "web.service",
            "[Service]\nEnvironment=\"A=x\\u202ey\"\nB=\t\n",
        )];
        let mut plan = Plan::new(&installed, &desired);
        plan.hand_edited
            .push("web\u{1b}]0;owned\u{7}.service".into());
        // A line feed in a drop-in's or a fragment's name adds no plan line.
        plan.drop_ins.push((
            "web.service".into(),
            vec!["/etc/x\u{2066}.conf\n+ fake.service (new: enable and start)".into()],
        ));
        plan.loaded_elsewhere
            .push(("web.service".into(), "/run/web.service\nall is well".into()));
        for color in [false, true] {
            let text = plan.describe(color);
            let obeyed: Vec<char> = (text.chars())
                .filter(|&c| crate::diagnostic::acts_on_terminal(c) && !matches!(c, '\n' | '\t'))
                .filter(|&c| !(color && c == '\u{1b}'))
                .collect();
            assert!(obeyed.is_empty(), "{obeyed:?} in:\n{text}");
            assert!(text.contains("-Environment=\"A=x\\u{202e}y\""), "{text}");
            assert!(text.contains("\\u{1b}[2J\\u{85}"), "{text}");
            assert!(text.contains("+B=\t"), "tabs kept: {text}");
            assert!(
                !(text.lines())
                    .any(|line| line.starts_with("+ fake") || line.starts_with("all is well")),
                "{text}"
            );
        }
        // With colour, the only escape sequences are unitgen's own.
        let colored = plan.describe(true);
        assert!(
            !colored.contains("\u{1b}[2J") && !colored.contains("\u{1b}]0;"),
            "{colored}"
        );
    }

    #[test]
    fn describes_changes_with_a_line_diff() {
        let installed = [unit("web.service", "[Service]\nA=1\nB=2\n")];
        let desired = [unit("web.service", "[Service]\nA=1\nB=3\n")];
        let text = Plan::new(&installed, &desired).describe(false);
        assert!(text.contains("~ web.service (changed: restart)"));
        assert!(text.contains("-B=2\n+B=3\n"), "{text}");
        let digests = Plan::new(
            &[unit(
                "web.service",
                "[Service]\nA=1\nB=2\nDigest=sha256:1\n",
            )],
            &[unit(
                "web.service",
                "[Service]\nA=1\nB=3\nDigest=sha256:2\n",
            )],
        )
        .describe(false);
        assert!(digests.contains("+B=3\n"), "{digests}");
        assert!(!digests.contains("Digest="), "no digest hunk: {digests}");
        assert!(!text.contains("\x1b["), "no colour unless asked");
        assert!(
            Plan::new(&installed, &desired)
                .describe(true)
                .contains("\x1b[32m+B=3")
        );
    }
}
