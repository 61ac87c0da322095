//! The parts of systemd's D-Bus API (org.freedesktop.systemd1) that unitgen
//! calls, as zbus proxies. Names and signatures follow
//! org.freedesktop.systemd1(5).

use zbus::zvariant::OwnedObjectPath;

/// A change `EnableUnitFiles`/`DisableUnitFiles` made: (type, symlink, target).
pub(crate) type UnitFileChange = (String, String, String);

/// One unit as `ListUnits` describes it: (name, description, load state,
/// active state, sub state, followed unit, object path, job id, job type,
/// job path).
pub(crate) type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false,
    blocking_name = "ManagerProxy"
)]
pub(crate) trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;

    /// Answers once the reload is complete.
    fn reload(&self) -> zbus::Result<()>;

    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Loads the units as `LoadUnit` does and lists each, in the order asked.
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;

    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<UnitFileChange>>;

    #[zbus(property)]
    fn system_state(&self) -> zbus::Result<String>;

    /// What every unit's environment starts from: `KEY=VALUE` entries
    /// (`DefaultEnvironment=`, `systemctl set-environment`).
    #[zbus(property)]
    fn environment(&self) -> zbus::Result<Vec<String>>;

    /// When the manager started (µs since the epoch): a reboot, or a
    /// re-exec, sets it anew.
    #[zbus(property)]
    fn userspace_timestamp(&self) -> zbus::Result<u64>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "UnitProxy"
)]
pub(crate) trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;

    #[zbus(property)]
    fn inactive_enter_timestamp(&self) -> zbus::Result<u64>;

    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> zbus::Result<Vec<u8>>;

    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;

    #[zbus(property)]
    fn drop_in_paths(&self) -> zbus::Result<Vec<String>>;

    #[zbus(property)]
    fn fragment_path(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "ServiceProxy"
)]
pub(crate) trait Service {
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;

    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;

    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;

    #[zbus(property)]
    fn exec_main_code(&self) -> zbus::Result<i32>;

    #[zbus(property, name = "ExecMainPID")]
    fn exec_main_pid(&self) -> zbus::Result<u32>;

    #[zbus(property)]
    fn exec_start_pre(&self) -> zbus::Result<Vec<ExecCommand>>;

    #[zbus(property)]
    fn exec_start_post(&self) -> zbus::Result<Vec<ExecCommand>>;

    #[zbus(property)]
    fn exec_stop(&self) -> zbus::Result<Vec<ExecCommand>>;

    #[zbus(property)]
    fn exec_stop_post(&self) -> zbus::Result<Vec<ExecCommand>>;
}

/// One command of a service's `ExecStartPre=` (and the like) as systemd
/// has it: path, argv, whether its failure is ignored (`-`), when its last
/// run started and ended (realtime, monotonic), its PID, and how it ended
/// (code: 1 exited, 2 killed, 3 dumped core; status: exit code or signal).
pub(crate) type ExecCommand = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Timer",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "TimerProxy"
)]
pub(crate) trait Timer {
    #[zbus(property, name = "NextElapseUSecRealtime")]
    fn next_elapse_usec_realtime(&self) -> zbus::Result<u64>;

    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> zbus::Result<u64>;
}

/// The match rule for the manager's `JobRemoved(u id, o job, s unit, s result)`.
pub(crate) fn job_removed_rule() -> zbus::Result<zbus::OwnedMatchRule> {
    Ok(zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.systemd1")?
        .path("/org/freedesktop/systemd1")?
        .interface("org.freedesktop.systemd1.Manager")?
        .member("JobRemoved")?
        .build()
        .to_owned()
        .into())
}
