//! The command line: clap definitions (their doc comments are the `--help`
//! text) and dispatch to one module per command.

mod apply;
mod backup;
mod completions;
mod control;
mod dns;
mod docs;
mod exec;
mod fleet;
mod history;
mod host;
mod import;
mod init;
mod installed;
mod logs;
mod ls;
mod man;
mod output;
mod pull;
mod render;
mod rollback;
mod schema;
mod site;
mod status;
mod validate;
pub(crate) mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compile::{Overrides, compile};
use crate::diagnostic::{Problem, Problems};
use crate::model::{EtcdApi, Instance};
use crate::site::Site;
use crate::systemd::JobKind;
use crate::template::Template;

/// Compile an app template into systemd units that run Docker containers,
/// and apply them.
///
/// Write an app's services once in `unitgen.yaml`, declare named instances
/// (live, staging, one per customer) and let unitgen generate one unit per
/// service, a Docker network per instance, and keep a host converged to it.
#[derive(Debug, Parser)]
#[command(
    name = "unitgen",
    version,
    max_term_width = 100,
    after_help = "Typical session (reads ./unitgen.yaml, else ./site.yaml; -f FILE for another):
  unitgen validate                      check the template and every instance
  unitgen plan staging                  what would change on this host (exit 2 if anything)
  unitgen apply staging                 make it so; the last good revision stays on failure
  unitgen status staging                services, states, containers (exit 3 if one is down)
  unitgen render staging --out units/   the units as files, to commit and review
  unitgen apply --host web1             with a site file: every instance it assigns to web1

Exit status (read as systemctl's and terraform's are):
  0  success; `plan`: the host runs exactly the template
  1  an error, a refused command line too (the reason is on stderr)
  2  `plan`: apply would change or repair something;
     `render --check`, `docs --check`: files out of date
  3  `status`: a unit is not as applied, or a container is unhealthy
  4  `status`: the instance is not installed;
     `history`: it has no recorded revision on this host
  `exec` exits with its command's status; `dns --check` with 1
  when a domain does not point at its host.

Run `unitgen COMMAND --help` for each command's options."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print or write the units of one instance.
    ///
    /// Without --out, every unit goes to stdout, each after a `# ==> NAME <==`
    /// line, sorted by name. With --out DIR, one file per unit is written to
    /// DIR (only files whose content changed are touched), and this instance's
    /// units that no longer exist are removed; other files are left alone.
    Render(render::RenderArgs),
    /// Check the template and every declared instance, writing nothing.
    Validate(validate::ValidateArgs),
    /// Show what `apply` would change on this host, as a diff of the units.
    ///
    /// Compares the host's real state, not only files: units not enabled,
    /// stopped or failed, files systemd has not loaded (daemon-reload
    /// pending), units that may run an old configuration after an
    /// interrupted apply, missing containers, and drop-ins (`systemctl
    /// edit`) that change a unit's meaning.
    ///
    /// Exits 0 only when the host runs exactly the template, 2 when
    /// something differs (so CI can detect drift), 1 on error.
    #[command(alias = "diff")]
    Plan(apply::PlanArgs),
    /// Bring this host's systemd to the instance's units.
    ///
    /// New units are enabled and started, changed ones restarted, removed ones
    /// stopped, disabled and deleted; unchanged units are not touched unless
    /// they need repair (see `plan`): enabled, started, or restarted to run
    /// their file. Jobs run concurrently in dependency order and each result
    /// is awaited. If any unit fails to come up, the previous revision is
    /// restored. Each successful apply is recorded as a revision in the state
    /// directory; an apply killed halfway is completed by the next one.
    Apply(apply::ApplyArgs),
    /// Fetch every image of an instance, changing nothing else.
    ///
    /// For mutable tags (`redis:7`): after a pull, `plan` shows each service
    /// whose tag now names another image than its container runs, and
    /// `apply` restarts it onto the new image. `apply --pull always` does both
    /// in one step.
    Pull(pull::PullArgs),
    /// Show every service of an instance with its state and container.
    ///
    /// Exits as `systemctl status` does, so scripts can use it: 0 when every
    /// unit is active and the installed units are the latest revision as
    /// applied; 3 when a unit is not as `plan` wants it (not active, not
    /// enabled, not reloaded, changed by drop-ins; a service's container
    /// not running, paused, off the instance network or changed by `docker
    /// update`; a stopped service's volume gone: the reasons are printed
    /// under its row), a service's container fails its healthcheck
    /// (`unhealthy`), or the units are not as applied (an apply did not
    /// finish, a file was changed, the revisions cannot be read); 4 when the
    /// instance is not installed; 1 on error.
    ///
    /// Works from the installed units and the state directory alone: if the
    /// template is broken or gone, the app is found from what is installed.
    Status(status::StatusArgs),
    /// Start an installed instance, or some of its services.
    ///
    /// Every unit of the instance (or the named services' units and
    /// sidekicks) is started in one batch, in dependency order; each job is
    /// awaited and its result printed. A service's dependencies start with it.
    /// With --fleet, the copies fleet has are launched, each awaited on its
    /// machine.
    Start(control::ControlArgs),
    /// Stop an installed instance, or some of its services.
    ///
    /// Stopped units stay installed and enabled: they start again at boot,
    /// with `unitgen start`, or with the next apply. With --fleet, the
    /// copies are set `loaded` (as `fleetctl stop` does) and awaited.
    Stop(control::ControlArgs),
    /// Restart an installed instance, or some of its services.
    ///
    /// Only the named services get new containers; their dependencies and
    /// dependents keep running. With --fleet, each copy is stopped and
    /// started again, one copy number at a time.
    Restart(control::ControlArgs),
    /// Show the journal of an instance's services, interleaved.
    ///
    /// Each line is prefixed by its service (`web | …`), in the order
    /// logged: what the containers printed, and systemd's own lines about
    /// their units. `-f` follows, `-n 50` shows the last 50 lines, `--since
    /// "10 min ago"` only recent ones.
    Logs(logs::LogsArgs),
    /// Run a shell, or a command, in a service's container.
    ///
    /// `unitgen exec live web` opens a shell (bash where the image has it,
    /// else sh); `unitgen exec live db -- psql -U postgres` runs a command.
    /// With a terminal on both ends the container gets one too. The exit
    /// code is the command's.
    Exec(exec::ExecArgs),
    /// List every app and instance on this host.
    ///
    /// From the installed units and the state directory: the last revision
    /// applied, when, and how many services are up. With --fleet, the
    /// instances fleet has: their services, and how many copies run.
    Ls(ls::LsArgs),
    /// Show the revisions of an instance and what each changed.
    ///
    /// One line per apply (or rollback) recorded on this host: its number
    /// (what `rollback --to` takes), when, and the services it added,
    /// changed or removed.
    ///
    /// Exits 4 when the instance has no recorded revision on this host
    /// (never applied here; a destroy keeps them), as `status` does for an
    /// instance that is not installed; 1 on error.
    History(history::HistoryArgs),
    /// Re-apply an earlier revision (by default the previous one).
    Rollback(rollback::RollbackArgs),
    /// Stop and remove an instance's units and network (volumes are kept
    /// unless --volumes is given).
    ///
    /// Works from the installed units and the state directory alone: if the
    /// template is broken or gone, the app is found from what is installed.
    Destroy(rollback::DestroyArgs),
    /// Back up an instance now: runs its backup unit and reports the snapshot.
    ///
    /// The same unit its timer starts on schedule (`backup.schedule`): dumps
    /// taken in the running containers, volumes copied (paused or stopped
    /// first where `consistency` says so), one restic snapshot tagged with
    /// app, instance and revision, then retention (`backup.keep`). Exits 1,
    /// with the unit's last log lines, when it fails.
    Backup(backup::BackupArgs),
    /// List an instance's snapshots: id, time, revision and size.
    Backups(backup::BackupsArgs),
    /// Restore an instance's data from a snapshot (the latest by default).
    ///
    /// Stops the instance's services, empties and refills each backed-up
    /// volume, starts each dumped service alone and feeds its dump to its
    /// `restore` command (once it runs, or is healthy), then starts the rest.
    /// With --into OTHER, the snapshot of INSTANCE is restored into OTHER
    /// (another instance of the same app): only OTHER's volumes are written.
    /// Asks for confirmation on a terminal; --yes otherwise.
    Restore(backup::RestoreArgs),
    /// Print the DNS records the routes need, or check that DNS has them.
    ///
    /// Each routed domain points at the public address(es) of the host(s)
    /// serving it (A and AAAA records), or is a CNAME to a host's DNS name
    /// where the site gives one. unitgen calls no provider: put the output
    /// into your zone file (`--format bind`) or octoDNS's config folder
    /// (`--format octodns --out zones/`), then `unitgen dns --check` asks a
    /// resolver whether every domain points at its host (exit 1 if not).
    Dns(dns::DnsArgs),
    /// Write the site's documentation as Markdown, generated from the files.
    ///
    /// `unitgen docs --out docs/` writes `README.md` (hosts, apps,
    /// instances, where each runs, domains, backups) and one page per app
    /// (services with image and version per instance, ports, volumes,
    /// dependencies, discovery names, routes, TLS, backups) with a Mermaid
    /// diagram GitHub and GitLab draw. The output depends only on the files:
    /// commit it and review it in pull requests, and `--check` in CI exits 2
    /// when it is out of date.
    Docs(docs::DocsArgs),
    /// Write the unitgen template equivalent to a docker-compose file.
    ///
    /// `unitgen import docker-compose.yml -o unitgen.yaml`, then review the
    /// template and deploy it. Keys unitgen has are carried over under the
    /// same name (long port and volume syntax written short); options that
    /// are one `docker run` flag (privileged, extra_hosts, ulimits, logging,
    /// …) go to `docker_args`; secrets and configs backed by a file become
    /// read-only bind mounts; relative host paths are resolved against the
    /// compose file's folder.
    ///
    /// The files read are those `docker compose up` reads, merged by
    /// compose's rules: the override file beside the compose file
    /// (compose.override.yml…), or the files given with `-f` in order (or
    /// `COMPOSE_FILE` in `.env`), and the projects `include:` names; the
    /// template's header names them all.
    ///
    /// Compose variables become instance values: `${TAG:-1.27}` is written
    /// `{{ tag }}`, and the one instance declared (`default`, or --instance)
    /// gets `tag: 1.27`, or the value from the `.env` file beside the compose
    /// file. `$$` stays a literal `$`. To deploy the app several times, add
    /// instances, each with its own values.
    ///
    /// What cannot be carried over as written (build, custom networks,
    /// container_name, profiles, unknown keys, …) is printed as a warning
    /// with its place in the compose file, and listed at the top of the
    /// template; nothing is dropped silently. Exits with 0 when the template
    /// was written, 1 when the compose file cannot be read or the template
    /// needs fixing before it validates.
    Import(import::ImportArgs),
    /// Write a commented starting template (or one from a compose file).
    ///
    /// `unitgen init` writes `unitgen.yaml`: two services and two instances,
    /// with a comment on each key, valid as it is. `unitgen init --from
    /// docker-compose.yml` writes the template imported from the compose
    /// file instead (see `unitgen import`). An existing file is kept unless
    /// --force is given.
    Init(init::InitArgs),
    /// Print the JSON Schema of unitgen's YAML files, for editors.
    ///
    /// Generated from the types the parser reads templates and deployments
    /// files into. Save it (`unitgen schema > unitgen.schema.json`) and put
    /// `# yaml-language-server: $schema=./unitgen.schema.json` at the top of
    /// unitgen.yaml: editors with the YAML language server then complete
    /// keys and flag mistakes as you type.
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh or fish).
    ///
    /// bash: `unitgen completions bash > /etc/bash_completion.d/unitgen`;
    /// zsh: into a folder of your `$fpath` as `_unitgen`; fish:
    /// `unitgen completions fish > ~/.config/fish/completions/unitgen.fish`.
    /// The Debian package installs all three. Instance and service names
    /// complete too (`unitgen logs live <TAB>`), from the file the command
    /// line names (`-f`) or the default one.
    Completions(completions::CompletionsArgs),
    /// The instance or service names the word being completed can be, one
    /// a line: what the completion scripts ask for as you type (nothing
    /// when the word is not a name, or on error).
    #[command(name = "complete-names", hide = true)]
    CompleteNames(completions::NamesArgs),
    /// Print the manual page (roff), or write every page with --out DIR.
    ///
    /// `unitgen man | man -l -` reads it now. The Debian package installs
    /// the pages.
    Man(man::ManArgs),
}

/// Where the template is and which values to use: shared by every command
/// that compiles an instance.
#[derive(Debug, Clone, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Set or override an instance value (repeatable): `--set version=1.5.0`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// etcd endpoints where sidekicks announce services and consumers find
    /// them (overrides `etcd.endpoints` of the file; turns discovery on).
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    pub etcd: Option<Vec<String>>,
    /// The etcd API sidekicks use (overrides `etcd.api`).
    #[arg(long, value_enum, value_name = "API")]
    pub etcd_api: Option<EtcdApiArg>,
    /// Accept an instance not declared under `instances:`, and `--set` keys
    /// that no instance declares and no expression uses. Without it they are
    /// errors, since they are most likely typos.
    #[arg(long)]
    pub allow_undeclared: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EtcdApiArg {
    V2,
    V3,
}

/// The template read when no `-f FILE` is given.
const DEFAULT_FILE: &str = "unitgen.yaml";

/// Only where the template is: for commands that act on what is installed
/// and need no instance values (status, rollback, destroy).
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// The app template, deployments file or site file [default:
    /// unitgen.yaml, or site.yaml when there is no unitgen.yaml]. With a
    /// site file, name instances APP/INSTANCE (plain INSTANCE when the site
    /// has one app).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = DEFAULT_FILE,
        hide_default_value = true
    )]
    pub file: PathBuf,
}

/// What a file holds: one app (its template, or a deployments file naming
/// it), or a site (hosts and apps).
pub enum Opened {
    App(Box<Template>),
    Site(Site),
}

impl FileArgs {
    /// The file to read: as given, or `site.yaml` when the default
    /// `unitgen.yaml` is not there and it is.
    pub fn path(&self) -> PathBuf {
        let site = std::path::Path::new(crate::site::DEFAULT_FILE);
        if self.file == std::path::Path::new(DEFAULT_FILE) && !self.file.exists() && site.exists() {
            return site.to_path_buf();
        }
        self.file.clone()
    }

    pub fn open(&self) -> Result<Opened, Problems> {
        let path = self.path();
        let text = crate::template::read_text(&path)?;
        if crate::site::is_site(&text) {
            return Site::parse(&path, text).map(Opened::Site);
        }
        let dir = path.parent().unwrap_or(std::path::Path::new(""));
        let first = crate::template::parse(&path, text)?;
        Template::with_deployments(first, dir).map(|t| Opened::App(Box::new(t)))
    }

    /// The app's template and the instance `target` names: `INSTANCE`, or
    /// `APP/INSTANCE` (a site file's apps; one app's own name is accepted).
    pub fn select(&self, target: &str) -> Result<(Template, String), Problems> {
        let mut chosen = self.select_many(&[target.to_string()])?;
        let (index, instance) = chosen.instances.pop().expect("one target, one instance");
        Ok((chosen.templates.swap_remove(index), instance))
    }

    /// The instances `targets` name (see `select`), from one read of the file.
    pub fn select_many(&self, targets: &[String]) -> Result<Chosen, Problems> {
        match self.open()? {
            Opened::App(template) => {
                let instances = (targets.iter())
                    .map(|target| Ok((0, own_instance(&template, target)?.to_string())))
                    .collect::<Result<_, Problems>>()?;
                Ok(Chosen {
                    templates: vec![*template],
                    instances,
                })
            }
            Opened::Site(site) => {
                let instances = (targets.iter())
                    .map(|target| site.select(target))
                    .collect::<Result<_, Problem>>()?;
                Ok(Chosen {
                    templates: site.apps.into_iter().map(|app| app.template).collect(),
                    instances,
                })
            }
        }
    }

    /// Every instance the file declares: a site file's, app by app.
    pub fn select_all(&self) -> Result<Chosen, Problems> {
        let chosen = match self.open()? {
            Opened::App(template) => Chosen {
                instances: (template.instance_names().into_iter())
                    .map(|name| (0, name))
                    .collect(),
                templates: vec![*template],
            },
            Opened::Site(site) => Chosen {
                instances: (site.apps.iter().enumerate())
                    .flat_map(|(index, app)| {
                        app.instances
                            .iter()
                            .map(move |p| (index, p.instance.clone()))
                    })
                    .collect(),
                templates: site.apps.into_iter().map(|app| app.template).collect(),
            },
        };
        if chosen.instances.is_empty() {
            return Err(
                Problem::new(format!("{} declares no instances", self.path().display()))
                    .help("declare them under `instances:` (an undeclared one renders by name, with --allow-undeclared)")
                    .into(),
            );
        }
        Ok(chosen)
    }

    /// The app and instance `target` names, for commands that act on what
    /// is installed: `APP/INSTANCE` needs no file at all.
    pub fn app_and_instance(&self, target: &str) -> Result<(String, String), Problems> {
        let (app, instance) = match target.split_once('/') {
            Some((app, instance)) => (app.to_string(), instance.to_string()),
            None => {
                let (template, instance) = self.select(target)?;
                (app_name(&template)?, instance)
            }
        };
        // They name units, containers and state files: a name unitgen never
        // installs under is refused before anything is looked up by it.
        for name in [&app, &instance] {
            crate::compile::syntax::check_app_or_instance_name(name).map_err(|why| {
                Problem::new(why).help(format!(
                    "give `INSTANCE` or `APP/INSTANCE` (given: `{}`)",
                    crate::diagnostic::shown(target)
                ))
            })?;
        }
        Ok((app, instance))
    }
}

/// What `dns` and `docs` read: every instance of the file, compiled, with
/// its host and routes.
fn site_view(file: &FileArgs) -> Result<crate::site_view::SiteView, Problems> {
    match file.open()? {
        Opened::App(template) => {
            crate::site_view::SiteView::from_template(&template, &Overrides::default())
        }
        Opened::Site(site) => crate::site_view::SiteView::from_site(&site, &Overrides::default()),
    }
}

/// The instance `target` names in a one-app file: `INSTANCE`, or
/// `APP/INSTANCE` with the file's own app name.
fn own_instance<'t>(template: &Template, target: &'t str) -> Result<&'t str, Problems> {
    let Some((app, instance)) = target.split_once('/') else {
        return Ok(target);
    };
    let name = app_name(template)?;
    if app != name {
        return Err(Problem::new(format!(
            "{} is app `{name}`, not `{app}`",
            template.source_name()
        ))
        .help(format!(
            "name the instance `{instance}` or `{name}/{instance}`"
        ))
        .into());
    }
    Ok(instance)
}

/// Instances chosen on the command line, each with the index of its app's
/// template (one template, or a site file's apps in file order).
pub struct Chosen {
    pub templates: Vec<Template>,
    pub instances: Vec<(usize, String)>,
}

/// The app's name, as its template says.
fn app_name(template: &Template) -> Result<String, Problems> {
    template
        .app
        .doc
        .app
        .as_ref()
        .map(|a| a.value.clone())
        .ok_or_else(|| {
            Problem::new(format!("{} has no `app:` name", template.app.file.name())).into()
        })
}

impl TemplateArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            set: self.set.clone(),
            etcd: self.etcd.clone(),
            etcd_api: self.etcd_api.map(|api| match api {
                EtcdApiArg::V2 => EtcdApi::V2,
                EtcdApiArg::V3 => EtcdApi::V3,
            }),
            allow_undeclared: self.allow_undeclared,
        }
    }

    /// Compiles the instance `target` names (see `FileArgs::select`).
    pub fn compile(&self, target: &str) -> Result<Instance, Problems> {
        let (template, instance) = self.file.select(target)?;
        compile(&template, &instance, &self.overrides())
    }

    /// Compiles chosen instances, on all cores, in their order; the
    /// problems of every one that fails (each problem once).
    pub fn compile_chosen(&self, chosen: &Chosen) -> Result<Vec<Instance>, Problems> {
        let overrides = self.overrides();
        let results = crate::parallel::map(&chosen.instances, 1, |(index, name)| {
            compile(&chosen.templates[*index], name, &overrides)
        });
        let mut instances = Vec::with_capacity(results.len());
        let mut problems = Problems::default();
        for result in results {
            match result {
                Ok(instance) => instances.push(instance),
                Err(found) => problems.extend_unique(found),
            }
        }
        problems.into_result(instances)
    }
}

fn parse_set(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{arg}` is not KEY=VALUE")),
    }
}

/// How a successful command ends: clean (exit 0), or "there are
/// differences" (exit 2, for CI drift checks), or, for `status`, the codes
/// `systemctl status` uses. Errors (exit 1) are the `Err` side, reported by
/// `main`.
pub enum Outcome {
    Clean,
    Differs,
    /// Installed, but not every unit runs, or not as applied (exit 3, as
    /// `systemctl status` for a unit that is not active).
    NotRunning,
    /// Nothing installed (exit 4, as `systemctl status` for no such unit).
    NotInstalled,
}

/// Prints clap's error for the command line and says how unitgen ends.
///
/// clap quotes the arguments as given: a control character in one (an
/// escape sequence, a carriage return, a line feed) would reach the
/// terminal, which every other unitgen message escapes. The error is made
/// again from the arguments with their control characters escaped, so it
/// keeps clap's own colours (on a terminal, as unitgen's errors have).
///
/// A wrong command line exits 1, as any other error: clap's own 2 is what
/// `plan`, `render --check` and `docs --check` say for "differs", which a CI
/// job would read as drift.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        // What was asked for, on stdout: nothing of the arguments in it.
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let escaped: Vec<String> = std::env::args_os()
        .map(|arg| crate::diagnostic::shown(&arg.to_string_lossy()))
        .collect();
    match Cli::try_parse_from(&escaped) {
        Err(again) if again.kind() == error.kind() => {
            let _ = again.print();
        }
        // Escaping changed the outcome (an argument was refused for its
        // control character): clap's first error, as plain text, escaped.
        _ => {
            let text = error.render().to_string();
            let lines: Vec<String> = text.lines().map(crate::diagnostic::shown).collect();
            eprintln!("{}", lines.join("\n"));
        }
    }
    ExitCode::FAILURE
}

/// What an instance has that unitgen cannot run on fleet, refused before
/// anything is rendered or asked. fleet starts units on machines unitgen
/// never writes to, so the env file a unit with secrets reads would not be
/// there. Routes need a router and the routes unit of a host: fleet's
/// units would run without them, and plan and apply said "up to date"
/// while no domain was served.
fn refuse_what_fleet_cannot_run(instance: &Instance) -> miette::Result<()> {
    if let Some(service) = instance.services.iter().find(|s| !s.secrets.is_empty()) {
        return Err(miette::miette!(
            help =
                "apply this instance to each host without --fleet, or pass the values another way",
            "service `{}` has secrets, which unitgen cannot deliver to fleet machines",
            service.name
        ));
    }
    if let Some(route) = instance.routes.first() {
        let mut problem = crate::diagnostic::Problem::new(format!(
            "instance `{}` routes {} to service `{}`, and unitgen cannot route on fleet: \
             its units would run with no router and no route",
            instance.instance,
            route.hosts.join(", "),
            route.service
        ))
        .label("routes")
        .help(
            "apply this instance without --fleet to the host whose router serves its \
             domains, or leave `routes:` out of the instances you run on fleet",
        );
        if let Some(at) = &route.at {
            problem = problem.at(at);
        }
        return Err(miette::Report::new(problem));
    }
    Ok(())
}

pub fn main() -> ExitCode {
    crate::secrets::no_core_dumps();
    crate::diagnostic::install_report_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => apply::plan(args),
        Command::Apply(args) => apply::apply(args),
        Command::Pull(args) => pull::run(args),
        Command::Status(args) => status::run(args),
        Command::Start(args) => control::run(JobKind::Start, args),
        Command::Stop(args) => control::run(JobKind::Stop, args),
        Command::Restart(args) => control::run(JobKind::Restart, args),
        Command::Logs(args) => logs::run(args),
        Command::Exec(args) => exec::run(args),
        Command::Ls(args) => ls::run(args),
        Command::History(args) => history::run(args),
        Command::Rollback(args) => rollback::rollback(args),
        Command::Destroy(args) => rollback::destroy(args),
        Command::Init(args) => init::run(args),
        Command::Import(args) => import::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => completions::run(args),
        Command::CompleteNames(args) => completions::names(args),
        Command::Man(args) => man::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Backups(args) => backup::backups(args),
        Command::Restore(args) => backup::restore(args),
        Command::Dns(args) => dns::run(args),
        Command::Docs(args) => docs::run(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Differs) => ExitCode::from(2),
        Ok(Outcome::NotRunning) => ExitCode::from(3),
        Ok(Outcome::NotInstalled) => ExitCode::from(4),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}
