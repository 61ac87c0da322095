//! Template + instance name → a resolved
//! [`model::Instance`](crate::model::Instance). Every template expression is
//! evaluated here and every value checked; all problems found are returned
//! together, each pointing at the text it is about.

mod backup;
mod calendar;
pub mod directives;
pub(crate) mod docker_args;
pub(crate) mod route;
pub mod syntax;
pub mod values;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::diagnostic::{Location, Problem, Problems, did_you_mean};
use crate::escape::{
    MAX_SERVICE_BYTES, check_command_words, check_environment_words, check_raw_value, check_size,
    check_specifiers,
};
use crate::model::{
    DEFAULT_STOP_GRACE_SECONDS, Discovery, EtcdApi, FleetOptions, HealthTest, Healthcheck,
    Instance, MAX_FLEET_COPIES, NetworkMode, Protocol, Restart, Secret, SecretEnv, SecretSource,
    Service, Volume, VolumeSource,
};
use crate::template::schema::route::RouteDecls;
use crate::template::schema::{
    DependsOn, EtcdDecl, KeyValues, Scalar, ServiceDef, ServiceEntry, VolumeDecl, Words,
};
use crate::template::spanned::Spanned;
use crate::template::{Loaded, Template};
use syntax::VolumeSpec;

/// What the command line adds to or changes in the files.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--set key=value`: instance values.
    pub set: Vec<(String, String)>,
    /// `--etcd URL,...`: etcd endpoints (turns discovery on).
    pub etcd: Option<Vec<String>>,
    /// `--etcd-api v2|v3`.
    pub etcd_api: Option<EtcdApi>,
    /// `--allow-undeclared`: an instance not declared under `instances:`,
    /// and `--set` keys no instance declares and no expression uses, are
    /// accepted (otherwise they are taken for typos).
    pub allow_undeclared: bool,
}

const DEFAULT_ETCD_TTL_SECONDS: u64 = 30;
/// etcd's `MaxLeaseTTL`.
const ETCD_MAX_TTL_SECONDS: u64 = 9_000_000_000;
const DEFAULT_ETCD_WAIT_SECONDS: u64 = 60;
const DEFAULT_ETCD_PREFIX: &str = "/unitgen";

/// A service compiles in some 8µs, a thread starts in some 50µs: only apps
/// with many services are worth splitting over cores.
const SERVICES_PER_THREAD: usize = 64;

/// Compiles `instance` of `template`, with the command line's overrides
/// (`--set` values over the instance's declared ones, `--etcd`, `--etcd-api`).
pub fn compile(
    template: &Template,
    instance: &str,
    overrides: &Overrides,
) -> Result<Instance, Problems> {
    let set = &overrides.set;
    let mut problems = Problems(template.unknown_keys());
    let app_file = &template.app;
    let app = match &app_file.doc.app {
        Some(app) => {
            if let Err(msg) = syntax::check_app_or_instance_name(&app.value) {
                problems.push(
                    Problem::new(msg)
                        .at(&app_file.at(&app.referenced))
                        .label("app name")
                        .help(format!("try `{}`", syntax::suggest_name(&app.value, '_'))),
                );
            }
            app.value.clone()
        }
        None => {
            problems.push(
                Problem::new(format!("{} has no `app:` name", app_file.file.name())).help(
                    "add `app: myapp` at the top: it prefixes every unit, container and network",
                ),
            );
            String::new()
        }
    };

    let instances_file = template.instances_file();
    let declared = instances_file
        .doc
        .instances
        .as_ref()
        .and_then(|m| m.iter().find(|(k, _)| k.value == instance));
    if declared.is_none() && !overrides.allow_undeclared {
        problems.push(undeclared_instance(template, instance));
    }
    if let Err(msg) = syntax::check_app_or_instance_name(instance) {
        let mut problem =
            Problem::new(msg).help(format!("try `{}`", syntax::suggest_name(instance, '_')));
        if let Some((key, _)) = declared {
            problem = problem
                .at(&instances_file.at(&key.referenced))
                .label("instance name");
        }
        problems.push(problem);
        // Every later message would name the instance by it (and a name
        // from the command line may hold anything): the name is the problem.
        return Err(problems);
    }

    let merged = template.entries().merge(instance, &mut problems);
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in &merged.values {
        values.insert(key.value.clone(), values::to_template(&value.value));
    }
    for (key, value) in set {
        if let Some(problem) = values::set_refused(key) {
            problems.push(problem);
        }
        values.insert(key.clone(), values::scalar_value(value));
    }
    values.insert("app".into(), Value::from(app.clone()));
    values.insert("instance".into(), Value::from(instance));

    // `--set` keys this instance does not declare are checked against the
    // expressions once every value is compiled: track which names they use.
    let declared_keys = declared_value_names(template);
    let check_set =
        !overrides.allow_undeclared && set.iter().any(|(key, _)| !declared_keys.contains(key));
    // By name: each service's volumes are looked up here.
    let volume_decls = Arc::new(
        (app_file.doc.volumes.iter().flatten())
            .map(|(name, decl)| (name.value.as_str(), decl))
            .collect(),
    );
    // A shared volume's own name is given to Docker as it is: one that is
    // not a volume name is refused by Docker, or (`/etc`) read as a host
    // folder to bind-mount.
    for decl in app_file.doc.volumes.iter().flatten().map(|(_, d)| d) {
        if let Some(name) = &decl.name
            && let Err(msg) = syntax::check_volume_name(&name.value)
        {
            problems.push(Problem::new(msg).at(&app_file.at(&name.referenced)));
        }
    }
    let mut compiler = ServiceCompiler {
        file: app_file,
        env: template_env(),
        used: check_set.then(HashSet::new),
        context: Value::from(values.clone()),
        values,
        instance_declared: declared.is_some(),
        instance: instance.to_string(),
        prefix: crate::model::prefix(&app, instance),
        volume_decls,
        secret_names: Vec::new(),
        problems,
    };
    let mut secrets = compiler.secret_decls(instances_file);
    // Every declared name, also of a declaration with a problem of its own.
    compiler.secret_names = (instances_file.doc.secrets.iter())
        .flat_map(|decls| decls.keys().map(|name| name.value.clone()))
        .collect();

    let left_out = merged.left_out(
        instances_file,
        app_file.doc.services.as_ref().map(|d| &d.value),
        &mut compiler.problems,
    );
    // Sized up front: a thousand services grown by doubling would take
    // megabytes more fresh from the system, which zeroes every page.
    let count = app_file.doc.services.as_ref().map_or(0, |d| d.value.len());
    let mut services = Vec::with_capacity(count);
    let mut service_locations = HashMap::with_capacity(count);
    match &app_file.doc.services {
        Some(defs) if !defs.value.is_empty() => {
            let chosen: Vec<_> = (defs.value.iter())
                .filter(|(name, _)| !left_out.contains_key(&name.value))
                .collect();
            // Services compile independently: a big app's on all cores,
            // each share by a compiler of its own, whose problems follow
            // the shares before it (the order a single pass finds them in).
            let parts = crate::parallel::chunks(&chosen, SERVICES_PER_THREAD, |part| {
                let mut share = compiler.share();
                let compiled: Vec<_> = (part.iter())
                    .map(|(name, entry)| {
                        let name_at = app_file.at(&name.referenced);
                        let service = share.service(name, &name_at, entry);
                        (name_at, service)
                    })
                    .collect();
                (compiled, share.problems, share.used)
            });
            for (compiled, problems, used) in parts {
                for (name_at, service) in compiled {
                    service_locations.insert(service.name.clone(), name_at);
                    services.push(service);
                }
                compiler.problems.0.extend(problems.0);
                if let (Some(all), Some(used)) = (&mut compiler.used, used) {
                    all.extend(used);
                }
            }
        }
        Some(defs) => compiler.problems.push(
            Problem::new("the app has no services")
                .at(&app_file.at(&defs.referenced))
                .help("add one, e.g. `web: nginx:1.27`"),
        ),
        None => compiler.problems.push(
            Problem::new(format!("{} has no `services:`", app_file.file.name()))
                .help("add `services:` with at least one service, e.g. `web: nginx:1.27`"),
        ),
    }

    // Only secrets some service uses are read on the host.
    secrets.retain(|secret| {
        services
            .iter()
            .any(|s| s.secrets.iter().any(|e| e.secret == secret.name))
    });
    // In a site file, an app without `etcd:` uses its instance's host's.
    let etcd = instances_file.doc.etcd.as_ref().or_else(|| {
        let host = merged.host.as_ref()?;
        instances_file.host_etcd.get(&host.value)
    });
    let discovery = compiler.discovery(instances_file, etcd, overrides);
    let fleet = compiler.fleet(instances_file, &services);
    let backup = compiler.backup(
        instances_file,
        app_file.doc.services.as_ref().map(|d| &d.value),
        &services,
        &template.instance_names(),
    );
    // The `router:` block is checked for every instance, routed or not: a
    // mistake in it (`directory: 5`) must not wait for the first route.
    let mut router = compiler.router(instances_file);
    let (routes, router) = match &merged.routes {
        Some(decls) => {
            let others = other_routes(template, instance);
            let others: Vec<_> = others.iter().map(|(n, r)| (n.as_str(), r)).collect();
            let routes = compiler.routes(instances_file, decls, &services, &others);
            // Traefik's etcd provider speaks the v3 API only: with v2, the
            // routes stay in the host's files.
            router.etcd = (discovery.as_ref())
                .filter(|d| d.api == EtcdApi::V3)
                .map(|d| d.endpoints.clone());
            (routes, Some(router))
        }
        None => (Vec::new(), None),
    };
    let mut problems = compiler.problems;
    if let Some(used) = &compiler.used {
        for (key, _) in set {
            if !declared_keys.contains(key) && !used.contains(key) {
                problems.push(undeclared_set(key, &declared_keys, used));
            }
        }
    }
    check_depends_on(&app_file.doc, app_file, &services, &left_out, &mut problems);
    check_host_ports(&services, &service_locations, &mut problems);
    if let Some(router) = router.as_ref().filter(|_| !routes.is_empty()) {
        check_router_ports(
            instance,
            &services,
            router,
            &service_locations,
            &mut problems,
        );
    }
    let services = if problems.is_empty() {
        dependency_order(services)
    } else {
        services
    };
    problems.into_result(Instance {
        app,
        instance: instance.to_string(),
        services,
        discovery,
        fleet,
        secrets,
        backup,
        routes,
        router,
    })
}

/// The routes of every other declared instance (as merged: an instance
/// may have them from the one it extends), by instance name.
fn other_routes(template: &Template, instance: &str) -> Vec<(String, RouteDecls)> {
    let entries = template.entries();
    let names = template.instance_names();
    let others = names.into_iter().filter(|name| name != instance);
    // Their own problems are reported when they are compiled.
    others
        .filter_map(|name| {
            let routes = entries.merge(&name, &mut Problems::default()).routes?;
            Some((name, routes))
        })
        .collect()
}

/// Every value name any instance declares.
fn declared_value_names(template: &Template) -> HashSet<String> {
    let doc = &template.instances_file().doc;
    let instances = doc.instances.iter().flat_map(|m| m.values());
    (instances.chain(&doc.defaults))
        .flat_map(|entry| entry.value.values.keys())
        .map(|key| key.value.clone())
        .collect()
}

/// An instance name that is not declared: most likely a typo.
pub fn undeclared_instance(template: &Template, instance: &str) -> Problem {
    let names = template.instance_names();
    let instance = &crate::diagnostic::shown(instance);
    let problem = Problem::new(format!(
        "instance `{instance}` is not declared under `instances:`"
    ));
    let help = match did_you_mean(instance, names.iter().map(String::as_str)) {
        Some(hint) => format!("{hint} (or pass --allow-undeclared to use `{instance}` anyway)"),
        None if names.is_empty() => {
            format!("declare it (`instances: {{{instance}: {{}}}}`), or pass --allow-undeclared")
        }
        None => format!(
            "declared: {}; declare `{instance}` there, or pass --allow-undeclared",
            names.join(", ")
        ),
    };
    problem.help(help)
}

/// A `--set` key no instance declares and no expression uses: most likely a typo.
fn undeclared_set(key: &str, declared: &HashSet<String>, used: &HashSet<String>) -> Problem {
    let key = &crate::diagnostic::shown(key);
    let mut known: Vec<&str> = declared.iter().chain(used).map(String::as_str).collect();
    known.sort();
    known.dedup();
    let help = match did_you_mean(key, known.iter().copied()) {
        Some(hint) => format!("{hint} (or pass --allow-undeclared to set `{key}` anyway)"),
        None => format!(
            "known values: {}; pass --allow-undeclared to set it anyway",
            known.join(", ")
        ),
    };
    Problem::new(format!(
        "`--set {key}`: no instance or expression uses `{key}`"
    ))
    .help(help)
}

/// The commonest templated text, one value put into text
/// (`https://{{ domain }}/`), as the engine would write it, without
/// compiling a template for it (which costs more than the rest of a
/// service's compile), and the name it uses. None for any other text
/// (filters, expressions, statements, whitespace control, a name that is
/// no value, a final line break, which the engine drops): the engine
/// evaluates those.
fn substitute_one<'t>(
    text: &'t str,
    values: &BTreeMap<String, Value>,
) -> Option<(String, &'t str)> {
    let (before, rest) = text.split_once("{{")?;
    let (inner, after) = rest.split_once("}}")?;
    let plain = |part: &str| !["{{", "{%", "{#"].iter().any(|m| part.contains(m));
    let name = inner.trim_matches(' ');
    let identifier = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let literal = ["true", "false", "none", "True", "False", "None"].contains(&name);
    if !plain(before) || !plain(after) || !identifier || literal || text.ends_with(['\n', '\r']) {
        return None;
    }
    // Undefined names are the engine's to report.
    let value = values.get(name)?;
    Some((format!("{before}{}{after}", Written(value)), name))
}

/// A value as `{{ }}` writes it: as minijinja does, but a boolean as YAML
/// and compose write it (`true`, not Jinja's `True`): `debug: true` put
/// into `DEBUG={{ debug }}` must give the container what compose gives it
/// for `DEBUG=${DEBUG}` (apps compare with "true").
struct Written<'v>(&'v Value);

impl std::fmt::Display for Written<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.kind() {
            minijinja::value::ValueKind::Bool => {
                f.write_str(if self.0.is_true() { "true" } else { "false" })
            }
            _ => self.0.fmt(f),
        }
    }
}

/// The work one templated value may make the engine do (minijinja's fuel:
/// about one unit per instruction or per 64 bytes produced). Real values
/// use a few hundred; a runaway loop stops here, in milliseconds, with an
/// error at the value, instead of taking gigabytes.
const TEMPLATE_FUEL: u64 = 100_000;

/// How deep macros and recursive loops may nest in one value.
const TEMPLATE_RECURSION: usize = 64;

fn template_env() -> Environment<'static> {
    let mut env = Environment::new();
    // A value's last line break is part of it, templated or not (a
    // `command: |` script that uses a value kept it only without one).
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("static syntax config"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.add_filter("required", required);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION);
    env.set_formatter(|out, state, value| match value.kind() {
        minijinja::value::ValueKind::Bool => {
            write!(out, "{}", Written(value)).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

/// `{{ secret | required("set a password") }}`: the value, or an error with
/// the message while it is missing or empty (compose's `${SECRET:?message}`).
fn required(value: Value, message: String) -> Result<Value, minijinja::Error> {
    if value.is_undefined() || value.is_none() || value.as_str() == Some("") {
        let why = if message.is_empty() {
            "no message given".into()
        } else {
            message
        };
        Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("a required value is missing: {why}"),
        ))
    } else {
        Ok(value)
    }
}

struct ServiceCompiler<'a> {
    file: &'a Loaded,
    env: Environment<'static>,
    /// The names template expressions use, when asked for (`--set` checks).
    used: Option<HashSet<String>>,
    values: BTreeMap<String, Value>,
    /// `values` as the engine takes them, built once: not per templated value.
    context: Value,
    instance_declared: bool,
    instance: String,
    prefix: String,
    /// Shared by the compilers of each share of the services.
    volume_decls: Arc<HashMap<&'a str, &'a VolumeDecl>>,
    /// The secrets declared under `secrets:`, which services may refer to.
    secret_names: Vec<String>,
    problems: Problems,
}

impl<'a> ServiceCompiler<'a> {
    /// A compiler of services with this one's values and no problems yet,
    /// for a share of the services compiled on another thread.
    fn share(&self) -> ServiceCompiler<'a> {
        ServiceCompiler {
            file: self.file,
            env: template_env(),
            used: self.used.as_ref().map(|_| HashSet::new()),
            values: self.values.clone(),
            context: self.context.clone(),
            instance_declared: self.instance_declared,
            instance: self.instance.clone(),
            prefix: self.prefix.clone(),
            volume_decls: self.volume_decls.clone(),
            secret_names: self.secret_names.clone(),
            problems: Problems::default(),
        }
    }

    fn at(&self, spanned: &crate::template::spanned::At) -> Location {
        self.file.at(spanned)
    }

    fn problem(&mut self, at: &Location, message: impl Into<String>) {
        self.problems.push(Problem::new(message).at(at));
    }

    /// Evaluates template expressions in one string value, and checks what
    /// every value must be: free of NUL (no process argument can hold one)
    /// and no longer than a unit can carry.
    fn expand(&mut self, text: &str, at: &Location) -> Option<String> {
        let out = if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
            text.to_string()
        } else if let Some((out, name)) = substitute_one(text, &self.values) {
            if let Some(used) = &mut self.used {
                used.insert(name.to_string());
            }
            out
        } else {
            if let Some(used) = &mut self.used
                && let Ok(parsed) = self.env.template_from_str(text)
            {
                used.extend(parsed.undeclared_variables(false));
            }
            match self.env.render_str(text, self.context.clone()) {
                Ok(out) => out,
                Err(err) => {
                    self.problems.push(self.template_problem(text, at, &err));
                    return None;
                }
            }
        };
        let refused = if out.contains('\0') {
            Err("values cannot contain a NUL byte".to_string())
        } else {
            check_size(&out)
        };
        match refused {
            Ok(()) => Some(out),
            Err(msg) => {
                self.problem(at, msg);
                None
            }
        }
    }

    fn template_problem(&self, text: &str, at: &Location, err: &minijinja::Error) -> Problem {
        let range = err.range();
        let inner = value_location(at, text);
        let here = match (&inner, range.clone()) {
            (Some(inner), Some(r)) => inner.narrow(r.start, r.end - r.start),
            _ => at.clone(),
        };
        if err.kind() == minijinja::ErrorKind::UndefinedError {
            let expr = range
                .map(|r| text[r].trim().to_string())
                .unwrap_or_else(|| "a value".into());
            let mut var = expr
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .find(|s| !s.is_empty())
                .unwrap_or(&expr)
                .to_string();
            // minijinja points where the undefined value was used: in
            // `{{ tag | upper }}`, at the filter. Name the variable that
            // has no value instead, where it is first read.
            let missing = self.missing_variables(text);
            let mut here = here;
            if !missing.iter().any(|(name, _)| *name == var)
                && let (Some((name, offset)), Some(inner)) = (missing.first(), &inner)
            {
                here = inner.narrow(*offset, name.len());
                var = name.clone();
            }
            let mut known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            known.sort();
            let help = match did_you_mean(&var, known.iter().copied()) {
                // Not `--set`: that would write the value into the units.
                None if self.secret_names.contains(&var) => format!(
                    "`{var}` is a secret: its value never goes into a unit, so no template can use it; give it to a service as an environment variable with `secrets: {{VARIABLE: {var}}}`"
                ),
                None if var == "secrets" && !self.secret_names.is_empty() => "the values of `secrets:` never go into a unit, so no template can use them; give one to a service as an environment variable with `secrets: {VARIABLE: SECRET_NAME}`".to_string(),
                Some(hint) => hint,
                None if self.instance_declared => format!(
                    "add `{var}` to instance `{}` under `instances:`, or pass `--set {var}=VALUE`; known values: {}",
                    self.instance,
                    known.join(", ")
                ),
                None => format!(
                    "instance `{}` is not declared under `instances:`; declare it with a `{var}` value, or pass `--set {var}=VALUE`",
                    self.instance
                ),
            };
            Problem::new(format!(
                "undefined variable `{var}` in instance `{}`",
                self.instance
            ))
            .at(&here)
            .label("undefined")
            .help(help)
        } else if err.kind() == minijinja::ErrorKind::OutOfFuel {
            Problem::new("this value's template does too much work")
                .at(&here)
                .label("stopped here")
                .help(format!(
                    "unitgen stops a value's template after {TEMPLATE_FUEL} steps (loops and output count): a unit value is meant to be short"
                ))
        } else {
            let detail = err
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| err.kind().to_string());
            Problem::new(format!("template error: {detail}"))
                .at(&here)
                .label("in this expression")
        }
    }

    /// The variables `text`'s template reads that have no value (neither
    /// an instance value nor a global such as `range`), each with the
    /// offset of its first whole-word occurrence, in that order.
    fn missing_variables(&self, text: &str) -> Vec<(String, usize)> {
        let Ok(template) = self.env.template_from_str(text) else {
            return Vec::new();
        };
        let globals: HashSet<&str> = self.env.globals().map(|(name, _)| name).collect();
        let mut missing: Vec<(String, usize)> = (template.undeclared_variables(false))
            .into_iter()
            .filter(|name| !self.values.contains_key(name) && !globals.contains(name.as_str()))
            .filter_map(|name| {
                let offset = word_offset(text, &name)?;
                Some((name, offset))
            })
            .collect();
        missing.sort_by_key(|(_, offset)| *offset);
        missing
    }

    fn expand_spanned(&mut self, value: &Spanned<String>) -> Option<(String, Location)> {
        let at = self.at(&value.referenced);
        let out = self.expand(&value.value, &at)?;
        Some((out, at))
    }

    fn expand_scalar(&mut self, value: &Spanned<Scalar>) -> Option<(String, Location)> {
        let at = self.at(&value.referenced);
        let out = self.expand(&value.value.0, &at)?;
        Some((out, at))
    }

    /// `command: npm start` is split like a shell would; a list is taken as is.
    fn words(&mut self, words: &Spanned<Words>, split: bool) -> Option<Vec<String>> {
        let at = self.at(&words.referenced);
        match &words.value {
            Words::One(text) => {
                let expanded = self.expand(text, &at)?;
                if !split {
                    return Some(vec![expanded]);
                }
                match shlex::split(&expanded) {
                    Some(w) => Some(w),
                    None => {
                        self.problem(
                            &at,
                            "unbalanced quotes: write the command as a list instead",
                        );
                        None
                    }
                }
            }
            Words::List(list) => {
                let mut out = Vec::new();
                for item in list {
                    out.push(self.expand_scalar(item)?.0);
                }
                Some(out)
            }
        }
    }

    fn key_values(
        &mut self,
        kv: &Spanned<KeyValues>,
        what: &str,
        check_name: fn(&str) -> Result<(), String>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |this: &mut Self, key: String, value: String, at: &Location| {
            if let Err(msg) = check_name(&key) {
                this.problem(at, msg);
                return;
            }
            if out.iter().any(|(k, _)| *k == key) {
                this.problem(at, format!("{what} `{key}` is set twice"));
                return;
            }
            out.push((key, value));
        };
        match &kv.value {
            KeyValues::Map(pairs) => {
                for (key, value) in pairs {
                    let key_at = self.at(&key.referenced);
                    let Some(value) = value else {
                        self.problems.push(
                            Problem::new(format!("{what} `{}` has no value", key.value))
                                .at(&key_at)
                                .help(format!(
                                    "units do not inherit your shell's environment; write `{}: \"\"` for an empty value",
                                    key.value
                                )),
                        );
                        continue;
                    };
                    if let Some((value, _)) = self.expand_scalar(value) {
                        push(self, key.value.clone(), value, &key_at);
                    }
                }
            }
            KeyValues::List(items) => {
                for item in items {
                    let Some((text, at)) = self.expand_spanned(item) else {
                        continue;
                    };
                    match text.split_once('=') {
                        Some((key, value)) => push(self, key.to_string(), value.to_string(), &at),
                        None => self.problems.push(
                            Problem::new(format!("`{text}` has no `=`"))
                                .at(&at)
                                .help("write `NAME=value`, or use a map"),
                        ),
                    }
                }
            }
        }
        out
    }

    fn service(
        &mut self,
        name: &Spanned<String>,
        name_at: &Location,
        entry: &Spanned<ServiceEntry>,
    ) -> Service {
        if let Err(msg) = syntax::check_service_name(&name.value) {
            self.problems.push(
                Problem::new(msg)
                    .at(name_at)
                    .label("service name")
                    .help(format!("try `{}`", syntax::suggest_name(&name.value, '-'))),
            );
        }
        let entry_at = self.at(&entry.referenced);
        let empty = ServiceDef::default();
        let (def, image) = match &entry.value {
            ServiceEntry::Image(image) => (&empty, Some((image.clone(), entry_at.clone()))),
            ServiceEntry::Full(def) => {
                let image = def
                    .image
                    .as_ref()
                    .map(|i| (i.value.clone(), self.at(&i.referenced)));
                (def.as_ref(), image)
            }
        };
        let mut service = Service {
            name: name.value.clone(),
            stop_grace_seconds: DEFAULT_STOP_GRACE_SECONDS,
            ..Service::default()
        };
        match image {
            Some((image, at)) => {
                if let Some(image) = self.expand(&image, &at) {
                    if let Err(msg) = syntax::check_image(&image) {
                        self.problem(&at, msg);
                    }
                    service.image = image;
                }
            }
            None => self.problems.push(
                Problem::new(format!("service `{}` has no `image`", name.value))
                    .at(name_at)
                    .help("add `image: NAME:TAG`"),
            ),
        }
        if let Some(command) = &def.command {
            service.command = self.words(command, true);
        }
        // `[]` or `""`: none, the image's is not run either (compose's
        // and `docker run --entrypoint ""`'s meaning).
        if let Some(entrypoint) = &def.entrypoint {
            service.entrypoint = self.words(entrypoint, true);
        }
        if let Some(env) = &def.environment {
            service.environment =
                self.key_values(env, "environment variable", syntax::check_env_name);
        }
        if let Some(secrets) = &def.secrets {
            service.secrets = self.secret_envs(secrets);
            for env in &service.secrets {
                if service.environment.iter().any(|(k, _)| *k == env.variable) {
                    self.problems.push(
                        Problem::new(format!(
                            "`{}` is set both in `environment` and in `secrets`",
                            env.variable
                        ))
                        .at(&self.at(&secrets.referenced))
                        .help("keep it in `secrets` only: `environment` values are visible to every local user"),
                    );
                }
            }
        }
        if let Some(labels) = &def.labels {
            service.labels = self.key_values(labels, "label", syntax::check_label_name);
        }
        if let Some(files) = &def.env_file {
            for file in self.words(files, false).unwrap_or_default() {
                if !file.starts_with('/') {
                    self.problems.push(
                        Problem::new(format!("env_file `{file}` is relative"))
                            .at(&self.at(&files.referenced))
                            .help("Docker reads it on the host when the unit starts: give an absolute host path"),
                    );
                }
                service.env_files.push(file);
            }
        }
        for port in def.ports.iter().flatten() {
            let Some((text, at)) = self.expand_scalar(port) else {
                continue;
            };
            match syntax::parse_port(&text) {
                Ok(port) => service.ports.push(port),
                Err(msg) => self.problems.push(Problem::new(msg).at(&at).label("port")),
            }
        }
        for volume in def.volumes.iter().flatten() {
            let Some((text, at)) = self.expand_spanned(volume) else {
                continue;
            };
            match syntax::parse_volume(&text) {
                Ok(spec) => {
                    let volume = self.volume(spec);
                    // Docker refuses to create the container ("Duplicate
                    // mount point"): said here, where it is written.
                    let target = volume.target.trim_end_matches('/');
                    if service
                        .volumes
                        .iter()
                        .any(|v| v.target.trim_end_matches('/') == target)
                    {
                        self.problems.push(
                            Problem::new(format!(
                                "two volumes mount at `{}`: Docker refuses to start the container",
                                volume.target
                            ))
                            .at(&at)
                            .label("second mount")
                            .help("keep one of them"),
                        );
                    }
                    service.volumes.push(volume);
                }
                Err(msg) => self
                    .problems
                    .push(Problem::new(msg).at(&at).label("volume")),
            }
        }
        service.user = def
            .user
            .as_ref()
            .and_then(|u| self.expand_scalar(u))
            .map(|v| v.0);
        service.working_dir = def
            .working_dir
            .as_ref()
            .and_then(|w| self.expand_spanned(w))
            .map(|(dir, at)| {
                // Docker refuses to start a container in a relative one.
                if !dir.starts_with('/') {
                    self.problems.push(
                        Problem::new(format!("working_dir `{dir}` is not an absolute path"))
                            .at(&at)
                            .help("the folder in the container the command runs in: `/app`"),
                    );
                }
                dir
            });
        service.hostname = def
            .hostname
            .as_ref()
            .and_then(|h| self.expand_spanned(h))
            .map(|(name, at)| {
                // Linux takes at most 64 bytes: Docker refuses to run a
                // container with a longer one.
                if name.len() > 64 {
                    self.problem(
                        &at,
                        format!(
                            "this hostname is {} bytes long; Linux takes at most 64",
                            name.len()
                        ),
                    );
                }
                name
            });
        if let Some(restart) = &def.restart {
            let at = self.at(&restart.referenced);
            service.restart = match restart.value.as_str() {
                "no" => Restart::No,
                "always" | "unless-stopped" => Restart::Always,
                "on-failure" => Restart::OnFailure { max_restarts: None },
                other => match other.strip_prefix("on-failure:").map(|n| n.parse::<u64>()) {
                    // Docker's `on-failure:0` sets no maximum.
                    Some(Ok(0)) => Restart::OnFailure { max_restarts: None },
                    Some(Ok(n)) => match u32::try_from(n) {
                        // The unit's `StartLimitBurst=` is the restarts
                        // plus the start, in systemd's 32 bits.
                        Ok(n) if n < u32::MAX => Restart::OnFailure {
                            max_restarts: Some(n),
                        },
                        _ => {
                            self.problems.push(
                                Problem::new(format!(
                                    "`{other}`: systemd counts at most {} restarts",
                                    u32::MAX - 1
                                ))
                                .at(&at)
                                .help("for no limit, leave the number out: `on-failure`"),
                            );
                            Restart::OnFailure { max_restarts: None }
                        }
                    },
                    _ => {
                        self.problems.push(
                            Problem::new(format!("unknown restart policy `{other}`"))
                                .at(&at)
                                .help("use no, always, unless-stopped, on-failure or on-failure:N (at most N restarts)"),
                        );
                        Restart::default()
                    }
                },
            };
        }
        if let Some(hc) = &def.healthcheck {
            service.healthcheck = self.healthcheck(hc);
        }
        if let Some(path) = &def.health_path
            && let Some((path, at)) = self.expand_spanned(path)
        {
            match route::check_path(&path) {
                Ok(()) => service.health_path = Some(path),
                Err(msg) => self.problem(&at, msg),
            }
        }
        if let Some(mem) = &def.mem_limit
            && let Some((text, at)) = self.expand_scalar(mem)
        {
            match syntax::check_memory(&text) {
                Ok(m) => service.memory = Some(m),
                Err(msg) => self.problem(&at, msg),
            }
        }
        if let Some(cpus) = &def.cpus
            && let Some((text, at)) = self.expand_scalar(cpus)
        {
            match syntax::check_cpus(&text) {
                Ok(()) => {
                    service.cpus = Some(text);
                    service.cpus_at = Some(at);
                }
                Err(msg) => self.problem(&at, msg),
            }
        }
        for (list, out) in [
            (&def.cap_add, &mut service.cap_add),
            (&def.cap_drop, &mut service.cap_drop),
        ] {
            for cap in list.iter().flatten() {
                if let Some((c, at)) = self.expand_spanned(cap) {
                    // Docker refuses to start a container with another.
                    if let Err(msg) = syntax::check_capability(&c) {
                        self.problem(&at, msg);
                    }
                    out.push(c);
                }
            }
        }
        service.read_only = def.read_only.unwrap_or(false);
        service.init = def.init.unwrap_or(false);
        if let Some(tmpfs) = &def.tmpfs {
            let mounts: Vec<(String, Location)> = match &tmpfs.value {
                Words::One(text) => {
                    let at = self.at(&tmpfs.referenced);
                    self.expand(text, &at)
                        .map(|t| (t, at))
                        .into_iter()
                        .collect()
                }
                Words::List(list) => list.iter().filter_map(|m| self.expand_scalar(m)).collect(),
            };
            for (mount, at) in mounts {
                if let Err(msg) = syntax::check_tmpfs(&mount) {
                    self.problem(&at, msg);
                }
                service.tmpfs.push(mount);
            }
        }
        if let Some(grace) = &def.stop_grace_period
            && let Some((text, at)) = self.expand_spanned(grace)
        {
            match syntax::parse_duration(&text) {
                Ok(secs) => service.stop_grace_seconds = secs,
                Err(msg) => self.problem(&at, msg),
            }
        }
        if let Some(signal) = &def.stop_signal
            && let Some((text, at)) = self.expand_spanned(signal)
        {
            match syntax::signal_number(&text) {
                Ok(number) => service.stop_signal = Some((text, number)),
                Err(msg) => self.problem(&at, msg),
            }
        }
        let (docker_args, places): (Vec<String>, Vec<Location>) = (def.docker_args.iter())
            .flatten()
            .filter_map(|arg| self.expand_spanned(arg))
            .unzip();
        for (index, msg) in docker_args::supervision_conflicts(&docker_args) {
            self.problems.push(
                Problem::new(msg)
                    .at(&places[index])
                    .label("this flag")
                    .help("`docker_args` adds to what unitgen gives `docker run`; these flags are how the unit supervises its container"),
            );
        }
        service.docker_args = docker_args;
        if let Some(depends) = &def.depends_on {
            (service.depends_on, service.restarts_with) = self.depends_on(depends);
        }
        if let Some(mode) = &def.network_mode {
            service.network_mode = self.network_mode(mode, def, &mut service);
        }
        service.oneshot = def.oneshot.unwrap_or(false);
        if service.oneshot {
            match (&def.restart, service.restart) {
                // A oneshot runs once: compose's `restart: "no"`.
                (None, _) => service.restart = Restart::No,
                (Some(_), Restart::No | Restart::OnFailure { .. }) => {}
                (Some(restart), Restart::Always) => self.problems.push(
                    Problem::new(format!(
                        "`{}` is a oneshot: it cannot be restarted `{}`",
                        name.value, restart.value
                    ))
                    .at(&self.at(&restart.referenced))
                    .help("a oneshot runs to completion once per start: use `no` or `on-failure` (to retry a failure)"),
                ),
            }
        }
        if let Some(sections) = &def.systemd {
            service.systemd = self.systemd_keys(sections);
        }
        self.check_service_texts(&service, name_at);
        service
    }

    /// What no single value shows: a NUL from a source that is not
    /// templated (e.g. a YAML `"\0"` escape), and the total size, since one
    /// `docker run` line carries all of a service's values.
    fn check_service_texts(&mut self, service: &Service, at: &Location) {
        let texts = service.texts();
        if texts.iter().any(|t| t.contains('\0')) {
            self.problem(
                at,
                format!("a value of service `{}` contains a NUL byte", service.name),
            );
        }
        // Each value also costs its flag and quotes on the line.
        let bytes: usize = texts.iter().map(|t| t.len() + 16).sum();
        if bytes > MAX_SERVICE_BYTES {
            self.problems.push(
                Problem::new(format!(
                    "service `{}` has {} KiB of values, over the {} KiB limit",
                    service.name,
                    bytes / 1024,
                    MAX_SERVICE_BYTES / 1024
                ))
                .at(at)
                .help("one `docker run` line holds them all, and systemd cannot load a unit with a line over 1 MiB: move large data into a file (`env_file`, a volume)"),
            );
        }
    }

    /// The top-level `secrets:` of the instances file: each secret's source,
    /// with template expressions evaluated, but nothing read yet.
    fn secret_decls(&mut self, file: &'a Loaded) -> Vec<Secret> {
        let Some(decls) = &file.doc.secrets else {
            return Vec::new();
        };
        let saved = std::mem::replace(&mut self.file, file);
        // A relative `file:` is relative to the file that declares it.
        let base = std::path::Path::new(file.file.name())
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .to_path_buf();
        let mut secrets = Vec::new();
        for (name, decl) in decls {
            let name_at = self.at(&name.referenced);
            if let Err(msg) = syntax::check_secret_name(&name.value) {
                self.problem(&name_at, msg);
                continue;
            }
            let decl_value = &decl.value;
            let given = [
                decl_value.file.is_some(),
                decl_value.environment.is_some(),
                decl_value.command.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                self.problems.push(
                    Problem::new(format!(
                        "secret `{}` needs exactly one source",
                        name.value
                    ))
                    .at(&name_at)
                    .help("give one of `file: PATH`, `environment: VARIABLE` or `command: pass show NAME`"),
                );
                continue;
            }
            let source = if let Some(path) = &decl_value.file {
                self.expand_spanned(path)
                    .map(|(path, at)| (SecretSource::File(base.join(path)), at))
            } else if let Some(variable) = &decl_value.environment {
                self.expand_spanned(variable).and_then(
                    |(variable, at)| match syntax::check_env_name(&variable) {
                        Ok(()) => Some((SecretSource::Environment(variable), at)),
                        Err(msg) => {
                            self.problem(&at, msg);
                            None
                        }
                    },
                )
            } else if let Some(command) = &decl_value.command {
                let at = self.at(&command.referenced);
                match self.words(command, true) {
                    Some(words) if words.is_empty() => {
                        self.problem(&at, "the command is empty");
                        None
                    }
                    Some(words) => Some((SecretSource::Command(words), at)),
                    None => None,
                }
            } else {
                None
            };
            if let Some((source, at)) = source {
                secrets.push(Secret {
                    name: name.value.clone(),
                    source,
                    at,
                });
            }
        }
        self.file = saved;
        secrets
    }

    /// A service's `secrets:`: environment variable → secret name.
    fn secret_envs(&mut self, kv: &Spanned<KeyValues>) -> Vec<SecretEnv> {
        let mut pairs: Vec<(String, String, Location)> = Vec::new();
        match &kv.value {
            KeyValues::Map(entries) => {
                for (variable, secret) in entries {
                    let at = self.at(&variable.referenced);
                    let Some(secret) = secret else {
                        self.problems.push(
                            Problem::new(format!("`{}` names no secret", variable.value))
                                .at(&at)
                                .help(format!("write `{}: SECRET_NAME`", variable.value)),
                        );
                        continue;
                    };
                    if let Some((secret, secret_at)) = self.expand_scalar(secret) {
                        if let Err(msg) = syntax::check_env_name(&variable.value) {
                            self.problem(&at, msg);
                            continue;
                        }
                        pairs.push((variable.value.clone(), secret, secret_at));
                    }
                }
            }
            KeyValues::List(items) => {
                for item in items {
                    let Some((text, at)) = self.expand_spanned(item) else {
                        continue;
                    };
                    match text.split_once('=') {
                        Some((variable, secret)) => {
                            if let Err(msg) = syntax::check_env_name(variable) {
                                self.problem(&at, msg);
                                continue;
                            }
                            pairs.push((variable.to_string(), secret.to_string(), at));
                        }
                        None => self.problems.push(
                            Problem::new(format!("`{text}` says which secret, but not as which variable"))
                                .at(&at)
                                .help(format!(
                                    "unitgen gives a secret to the container as an environment variable: write `secrets: {{{}: {text}}}`",
                                    text.to_uppercase().replace(['-', '.'], "_")
                                )),
                        ),
                    }
                }
            }
        }
        let mut out: Vec<SecretEnv> = Vec::new();
        for (variable, secret, at) in pairs {
            if out.iter().any(|e| e.variable == variable) {
                self.problem(&at, format!("`{variable}` is set twice"));
                continue;
            }
            if !self.secret_names.contains(&secret) {
                let help = did_you_mean(&secret, self.secret_names.iter().map(String::as_str))
                    .unwrap_or_else(|| {
                        format!(
                            "declare it under the top-level `secrets:`, e.g. `secrets: {{{secret}: {{file: /etc/unitgen/{secret}}}}}`"
                        )
                    });
                self.problems.push(
                    Problem::new(format!("unknown secret `{secret}`"))
                        .at(&at)
                        .label("not declared")
                        .help(help),
                );
                continue;
            }
            out.push(SecretEnv {
                variable,
                secret,
                digest: None,
            });
        }
        out
    }

    /// The `etcd:` block of the instances file, with `--etcd` overrides.
    fn discovery(
        &mut self,
        file: &'a Loaded,
        decl: Option<&EtcdDecl>,
        overrides: &Overrides,
    ) -> Option<Discovery> {
        let mut discovery = Discovery {
            endpoints: Vec::new(),
            api: EtcdApi::V3,
            ttl_seconds: DEFAULT_ETCD_TTL_SECONDS,
            prefix: DEFAULT_ETCD_PREFIX.to_string(),
            address: None,
            wait_seconds: DEFAULT_ETCD_WAIT_SECONDS,
        };
        if let Some(decl) = decl {
            let saved = std::mem::replace(&mut self.file, file);
            discovery.endpoints = self.words(&decl.endpoints, false).unwrap_or_default();
            if let Some(api) = &decl.api {
                match EtcdApi::parse(&api.value) {
                    Some(parsed) => discovery.api = parsed,
                    None => self.problems.push(
                        Problem::new(format!("unknown etcd api `{}`", api.value))
                            .at(&self.at(&api.referenced))
                            .help("use v3 (leases) or v2 (keys with a TTL, as fleet-era clusters use)"),
                    ),
                }
            }
            for (field, out) in [
                (&decl.ttl, &mut discovery.ttl_seconds),
                (&decl.wait, &mut discovery.wait_seconds),
            ] {
                if let Some((text, at)) = field.as_ref().and_then(|f| self.expand_spanned(f)) {
                    match syntax::parse_duration(&text) {
                        Ok(0) => self.problem(&at, "must be at least 1s"),
                        // etcd refuses a longer lease (v3) when the sidekick
                        // asks for it; v2 keys take it too, and a TTL means
                        // the same whichever API is chosen.
                        Ok(secs) if secs > ETCD_MAX_TTL_SECONDS => self.problem(
                            &at,
                            format!("`{text}` is longer than etcd keeps a lease (at most {ETCD_MAX_TTL_SECONDS}s, about 285 years)"),
                        ),
                        Ok(secs) => *out = secs,
                        Err(msg) => self.problem(&at, msg),
                    }
                }
            }
            if let Some((prefix, at)) = decl.prefix.as_ref().and_then(|p| self.expand_spanned(p)) {
                // Written into the sidekicks' comments as it is: a character
                // a terminal obeys or draws as nothing would hide there.
                if !prefix.starts_with('/')
                    || prefix.contains(|c: char| {
                        c.is_whitespace() || crate::diagnostic::acts_on_terminal(c)
                    })
                {
                    self.problem(
                        &at,
                        format!(
                            "etcd prefix `{prefix}` must start with `/` and contain no spaces, \
                             controls or invisible characters"
                        ),
                    );
                }
                discovery.prefix = prefix;
            }
            if let Some((address, at)) = decl.address.as_ref().and_then(|a| self.expand_spanned(a))
            {
                // Announced as `host:port` (in etcd, then in consumers' env
                // files and the router's backend URLs): an address or a
                // name, nothing else.
                match address.parse::<std::net::IpAddr>() {
                    // As Docker shows an IPv6 host: `[::1]:8080`.
                    Ok(std::net::IpAddr::V6(ip)) => discovery.address = Some(format!("[{ip}]")),
                    Ok(_) => discovery.address = Some(address),
                    Err(_) => match crate::dns::check_name(&address) {
                        Ok(()) => discovery.address = Some(address),
                        Err(why) => self.problems.push(
                            Problem::new(format!(
                                "etcd address `{address}` is neither an IP address nor a host name: {why}"
                            ))
                            .at(&at)
                            .help("the address other hosts reach this one's published ports at, e.g. `10.0.0.5`"),
                        ),
                    },
                }
            }
            self.file = saved;
        }
        if let Some(endpoints) = &overrides.etcd {
            discovery.endpoints = endpoints.clone();
        }
        if let Some(api) = overrides.etcd_api {
            discovery.api = api;
        }
        // etcdctl reads `a,b` as two endpoints: so do we, so that each is
        // checked on its own.
        discovery.endpoints = discovery
            .endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        if discovery.endpoints.is_empty() {
            return None;
        }
        // One `ETCDCTL_ENDPOINTS=` line carries them all.
        let together = check_size(&discovery.endpoints.join(","));
        for msg in discovery
            .endpoints
            .iter()
            .filter_map(|e| syntax::check_etcd_endpoint(e).err())
            .chain(together.err())
        {
            let mut problem = Problem::new(msg).help("write e.g. `http://127.0.0.1:2379`");
            // Point at the file only when the endpoint came from it.
            if let (Some(decl), None) = (decl, &overrides.etcd) {
                problem = problem.at(&file.at(&decl.endpoints.referenced));
            }
            self.problems.push(problem);
        }
        Some(discovery)
    }

    /// The `fleet:` block of the instances file.
    fn fleet(&mut self, file: &'a Loaded, services: &[Service]) -> FleetOptions {
        let mut fleet = FleetOptions {
            copies: 1,
            ..FleetOptions::default()
        };
        let Some(decl) = &file.doc.fleet else {
            return fleet;
        };
        for (key, value) in decl.metadata.iter().flatten() {
            // fleet reads `MachineMetadata=` as space-separated `key=value`s.
            let plain = |text: &str| {
                !text.is_empty()
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c))
            };
            for (text, at) in [
                (&key.value, &key.referenced),
                (&value.value.0, &value.referenced),
            ] {
                // `MachineMetadata=` is one line of every unit.
                if let Err(msg) = check_size(text) {
                    self.problems.push(Problem::new(msg).at(&file.at(at)));
                } else if !plain(text) {
                    self.problems.push(
                        Problem::new(format!(
                            "fleet metadata `{}` is not a plain word",
                            crate::diagnostic::shown(text)
                        ))
                        .at(&file.at(at))
                        .help("use letters, digits and `.`, `_`, `-`, `:`, `/`"),
                    );
                }
            }
            fleet
                .metadata
                .push(format!("{}={}", key.value, value.value.0));
        }
        for name in decl.global.iter().flatten() {
            if services.iter().any(|s| s.name == name.value) {
                fleet.global.push(name.value.clone());
            } else {
                self.problems.push(
                    Problem::new(format!(
                        "fleet global service `{}` is not a service",
                        name.value
                    ))
                    .at(&file.at(&name.referenced)),
                );
            }
        }
        if let Some(copies) = &decl.copies {
            // 0 would start nothing for a new service, and apply would then
            // call the cluster up to date.
            if copies.value == 0 {
                self.problems.push(
                    Problem::new("fleet copies must be at least 1")
                        .at(&file.at(&copies.referenced))
                        .help("to run a service nowhere, switch it off: `services: {worker: {enabled: false}}`"),
                );
            } else if copies.value > MAX_FLEET_COPIES {
                // apply submits and starts every copy, one unit each: a
                // slip of the keyboard would have it submit millions.
                self.problems.push(
                    Problem::new(format!(
                        "fleet copies must be at most {MAX_FLEET_COPIES}, not {}",
                        copies.value
                    ))
                    .at(&file.at(&copies.referenced))
                    .help("each copy runs on a machine of its own (`Conflicts=`): more copies than machines stay unscheduled"),
                );
            }
            fleet.copies = copies.value;
        }
        let saved = std::mem::replace(&mut self.file, file);
        let endpoint = decl.endpoint.as_ref().and_then(|e| self.expand_spanned(e));
        self.file = saved;
        if let Some((endpoint, at)) = endpoint {
            match crate::fleet::FleetClient::new(&endpoint) {
                Ok(_) => fleet.endpoint = Some(endpoint),
                Err(e) => self.problems.push(
                    Problem::new(match e.kind {
                        crate::fleet::ErrorKind::Endpoint(detail) => {
                            format!("fleet endpoint {detail}")
                        }
                        _ => e.to_string(),
                    })
                    .at(&at)
                    .help("write e.g. `http://10.0.0.1:49153` or `unix:///var/run/fleet.sock`"),
                ),
            }
        }
        fleet
    }

    fn volume(&self, spec: VolumeSpec<'_>) -> Volume {
        match spec {
            VolumeSpec::Named {
                name,
                target,
                read_only,
                relabel,
                nocopy,
            } => {
                let decl = self.volume_decls.get(name);
                let external = decl.is_some_and(|d| d.external);
                let docker_name = match decl.and_then(|d| d.name.as_ref()) {
                    Some(n) if external => n.value.clone(),
                    _ if external => name.to_string(),
                    _ => format!("{}-{name}", self.prefix),
                };
                Volume {
                    source: VolumeSource::Named {
                        docker_name,
                        external,
                    },
                    target: target.to_string(),
                    read_only,
                    propagation: None,
                    relabel: relabel.map(str::to_string),
                    nocopy,
                }
            }
            VolumeSpec::Bind {
                path,
                target,
                read_only,
                propagation,
                relabel,
            } => Volume {
                source: VolumeSource::Bind(path.to_string()),
                target: target.to_string(),
                read_only,
                propagation: propagation.map(str::to_string),
                relabel: relabel.map(str::to_string),
                nocopy: false,
            },
            VolumeSpec::Anonymous { target } => Volume {
                source: VolumeSource::Anonymous,
                target: target.to_string(),
                read_only: false,
                propagation: None,
                relabel: None,
                nocopy: false,
            },
        }
    }

    fn healthcheck(&mut self, hc: &crate::template::schema::Healthcheck) -> Option<Healthcheck> {
        if hc.disable {
            return Some(Healthcheck::Disabled);
        }
        let test = hc.test.as_ref()?;
        let at = self.at(&test.referenced);
        let test = match &test.value {
            Words::One(_) => HealthTest::Shell(self.words(test, false)?.remove(0)),
            Words::List(_) => {
                let words = self.words(test, false)?;
                match words.split_first() {
                    Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => {
                        HealthTest::Exec(rest.to_vec())
                    }
                    Some((kind, [shell])) if kind == "CMD-SHELL" => {
                        HealthTest::Shell(shell.clone())
                    }
                    Some((kind, [])) if kind == "NONE" => return Some(Healthcheck::Disabled),
                    _ => {
                        self.problems.push(
                            Problem::new("a healthcheck test list starts with CMD, CMD-SHELL or NONE")
                                .at(&at)
                                .help("e.g. `test: [CMD, wget, -q, -O-, http://localhost/]` or `test: wget -q -O- http://localhost/`"),
                        );
                        return None;
                    }
                }
            }
        };
        let mut duration = |d: &Option<Spanned<String>>| -> Option<String> {
            let (text, at) = self.expand_spanned(d.as_ref()?)?;
            match syntax::check_health_duration(&text) {
                Ok(_) => Some(text),
                Err(msg) => {
                    self.problem(&at, msg);
                    None
                }
            }
        };
        Some(Healthcheck::Check {
            test,
            interval: duration(&hc.interval),
            timeout: duration(&hc.timeout),
            start_period: duration(&hc.start_period),
            retries: hc.retries.as_ref().map(|r| r.value),
        })
    }

    /// The services this one depends on, and those whose restart restarts it.
    /// `network_mode`, with what Docker refuses beside it (ports published
    /// from another container's network, a hostname of its own). A service
    /// sharing another's network starts after it and restarts with it: a
    /// new container of that service is a new network, which the old one
    /// no longer reaches.
    fn network_mode(
        &mut self,
        mode: &Spanned<String>,
        def: &ServiceDef,
        service: &mut Service,
    ) -> Option<NetworkMode> {
        let (text, at) = self.expand_spanned(mode)?;
        let network = match text.as_str() {
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            "bridge" => NetworkMode::Bridge,
            other => match other.split_once(':') {
                Some(("service", name)) if !name.is_empty() => NetworkMode::Service(name.into()),
                Some(("container", name)) if syntax::is_docker_name(name) => {
                    NetworkMode::Container(name.into())
                }
                _ => {
                    self.problems.push(
                        Problem::new(format!("unknown network_mode `{other}`"))
                            .at(&at)
                            .help("use host, none, bridge, service:NAME (another service's network) or container:NAME (a container's outside the instance)"),
                    );
                    return None;
                }
            },
        };
        // Docker discards the ports of a container on the host's network
        // or on none, and refuses them (and a hostname) in another's.
        if let Some(port) = def.ports.as_ref().and_then(|p| p.first())
            && network != NetworkMode::Bridge
        {
            self.problems.push(
                Problem::new(format!("`ports` with network_mode `{text}`: Docker publishes none"))
                    .at(&self.at(&port.referenced))
                    .help(match network {
                        NetworkMode::Host => "on the host's network the service listens on the host's ports itself: leave `ports` out",
                        NetworkMode::None => "a container without a network has no port to publish: leave `ports` out",
                        _ => "publish the port on the service whose network this one shares",
                    }),
            );
        }
        if network.is_shared()
            && let Some(hostname) = &def.hostname
        {
            self.problems.push(
                Problem::new(format!("`hostname` with network_mode `{text}`: Docker refuses it (conflicting options: hostname and the network mode)"))
                    .at(&self.at(&hostname.referenced))
                    .help("the container has the hostname of the one whose network it shares: leave `hostname` out"),
            );
        }
        if let NetworkMode::Service(name) = &network {
            if !service.depends_on.contains(name) {
                service.depends_on.push(name.clone());
            }
            if !service.restarts_with.contains(name) {
                service.restarts_with.push(name.clone());
            }
        }
        Some(network)
    }

    fn depends_on(&mut self, depends: &Spanned<DependsOn>) -> (Vec<String>, Vec<String>) {
        match &depends.value {
            DependsOn::List(names) => (names.iter().map(|n| n.value.clone()).collect(), Vec::new()),
            DependsOn::Map(pairs) => {
                let mut restarts_with = Vec::new();
                for (name, detail) in pairs {
                    if let Some(cond) = &detail.condition
                        && !matches!(
                            cond.value.as_str(),
                            "service_started"
                                | "service_healthy"
                                | "service_completed_successfully"
                        )
                    {
                        self.problems.push(
                                Problem::new(format!("depends_on condition `{}` is not supported", cond.value))
                                    .at(&self.at(&cond.referenced))
                                    .help("use service_started, service_healthy or service_completed_successfully (a dependency with a healthcheck is always awaited until healthy, a oneshot until it exited)"),
                            );
                    }
                    if detail.restart == Some(true) {
                        restarts_with.push(name.value.clone());
                    }
                }
                (
                    pairs.iter().map(|(n, _)| n.value.clone()).collect(),
                    restarts_with,
                )
            }
        }
    }

    fn systemd_keys(
        &mut self,
        sections: &IndexMap<Spanned<String>, IndexMap<Spanned<String>, Spanned<Words>>>,
    ) -> BTreeMap<String, Vec<(String, String)>> {
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (section, keys) in sections {
            let section_at = self.at(&section.referenced);
            let known = crate::model::UNIT_SECTIONS;
            let own = section.value.starts_with("X-");
            if !known.contains(&section.value.as_str()) && !own {
                self.problems.push(
                    Problem::new(format!("unknown unit section `{}`", section.value))
                        .at(&section_at)
                        .help(did_you_mean(&section.value, known).unwrap_or_else(|| {
                            "use Unit, Service, Install, or an `X-` section of your own".into()
                        })),
                );
                continue;
            }
            // unitgen's record of what it wrote (`[X-Unitgen]`: owner,
            // image, secrets, routes file), which it reads back from the
            // first such section, and fleet's scheduling, which unitgen
            // writes from `fleet:`: a section of the user's by these names
            // would be read as theirs.
            if let Some(reserved) = ["X-Unitgen", "X-Fleet"]
                .into_iter()
                .find(|name| name.eq_ignore_ascii_case(&section.value))
            {
                self.problems.push(
                    Problem::new(format!(
                        "`[{}]` is {}'s section, not one of your own",
                        section.value,
                        if reserved == "X-Fleet" { "fleet" } else { "unitgen" }
                    ))
                    .at(&section_at)
                    .help(if reserved == "X-Fleet" {
                        "set fleet's scheduling with the top-level `fleet:` (metadata, global, copies)"
                    } else {
                        "unitgen records what it wrote there and reads it back; name a section of your own differently, e.g. `X-Mine`"
                    }),
                );
                continue;
            }
            if own && !is_systemd_name(&section.value) {
                self.problems.push(
                    Problem::new(format!("`{}` is not a unit section name", section.value))
                        .at(&section_at)
                        .help("after `X-`, use letters, digits, `-` and `_`"),
                );
                continue;
            }
            for (key, value) in keys {
                let key_at = self.at(&key.referenced);
                if !is_systemd_name(&key.value) {
                    self.problems.push(
                        Problem::new(format!("`{}` is not a systemd key name", key.value))
                            .at(&key_at)
                            .help("use letters, digits, `-` and `_`, starting with a letter"),
                    );
                    continue;
                }
                // systemd ignores keys of its own sections it does not know
                // (with a warning in the journal): a typo would silently
                // drop the setting. `X-` keys are for the user.
                if !own
                    && !key.value.starts_with("X-")
                    && !directives::is_known(&section.value, &key.value)
                {
                    let hint = did_you_mean(&key.value, directives::known(&section.value))
                        .unwrap_or_else(|| {
                            "see `man systemd.directives`; a key of your own starts with `X-` (the list is systemd 252's, from scripts/systemd-directives)".to_string()
                        });
                    self.problems.push(
                        Problem::new(format!(
                            "systemd has no key `{}` in [{}]",
                            key.value, section.value
                        ))
                        .at(&key_at)
                        .label("unknown key")
                        .help(hint),
                    );
                    continue;
                }
                let value_at = self.at(&value.referenced);
                for v in self.words(value, false).unwrap_or_default() {
                    // The value is systemd syntax, written as it is: it must
                    // stay one directive.
                    if let Err(msg) = check_raw_value(&v) {
                        self.problems.push(
                            Problem::new(msg)
                                .at(&value_at)
                                .label("value")
                                .help("a `systemd:` value is written into the unit as it is; pass text with line breaks through `environment` instead, which unitgen escapes"),
                        );
                        continue;
                    }
                    // systemd expands specifiers in its own keys (not in
                    // `X-` ones): one it cannot resolve loses the directive.
                    let own_key = !section.value.starts_with("X-") && !key.value.starts_with("X-");
                    // An empty assignment resets the key: after unitgen's
                    // own `ExecStartPre=` (env files, health image),
                    // `ExecStopPost=` (container removal), `Requires=`, …,
                    // it would silently drop them.
                    if own_key && v.is_empty() {
                        self.problems.push(
                            Problem::new(format!(
                                "an empty `{}=` makes systemd forget every earlier `{}=` of the unit, unitgen's own too",
                                key.value, key.value
                            ))
                            .at(&value_at)
                            .label("value")
                            .help("leave the key out, or give it a value"),
                        );
                        continue;
                    }
                    let specifiers_help = "write `%%` for a literal `%`; specifiers such as `%n` and `%i` are systemd's (see `man systemd.unit`)";
                    let checked = own_key.then(|| {
                        check_specifiers(&v)
                            .map_err(|msg| (msg, specifiers_help))
                            .and_then(|()| match key.value.as_str() {
                                // systemd drops each word that is not one.
                                "Environment" => check_environment_words(&v).map_err(|msg| {
                                    (
                                        msg,
                                        "or pass it through `environment`, which unitgen quotes",
                                    )
                                }),
                                // An unclosed quote in a command line:
                                // systemd does not load the unit at all.
                                key if key.starts_with("Exec") => check_command_words(&v, key)
                                    .map_err(|msg| {
                                        (
                                            msg,
                                            "a `systemd:` command line is systemd syntax: close each quote, and write `\\\\` for a backslash",
                                        )
                                    }),
                                _ => Ok(()),
                            })
                    });
                    if let Some(Err((msg, help))) = checked {
                        self.problems
                            .push(Problem::new(msg).at(&value_at).label("value").help(help));
                        continue;
                    }
                    out.entry(section.value.clone())
                        .or_default()
                        .push((key.value.clone(), v));
                }
            }
        }
        out
    }
}

/// A section or key name systemd reads as one word: a letter, then letters,
/// digits, `-` and `_`.
fn is_systemd_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where a scalar's own text starts in the file, if it can be mapped one to
/// one (plain or simply quoted), so errors can underline a part of it.
/// Where `word` first stands alone in `text` (not inside a longer name).
fn word_offset(text: &str, word: &str) -> Option<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word)
        .map(|(at, _)| at)
        .find(|&at| !text[..at].ends_with(is_name) && !text[at + word.len()..].starts_with(is_name))
}

fn value_location(at: &Location, value: &str) -> Option<Location> {
    let text = at.file.inner().as_str();
    let start = at.span.offset();
    let raw = text.get(start..start + at.span.len())?;
    if raw == value {
        return Some(at.clone());
    }
    let quoted = raw.len() >= 2
        && (raw.starts_with('"') || raw.starts_with('\''))
        && raw.ends_with(&raw[..1])
        && &raw[1..raw.len() - 1] == value;
    quoted.then(|| at.narrow(1, value.len()))
}

/// Unknown `depends_on` targets and dependency cycles.
fn check_depends_on(
    doc: &crate::template::schema::Document,
    file: &Loaded,
    services: &[Service],
    left_out: &HashMap<String, Location>,
    problems: &mut Problems,
) {
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    // A set: looking each target up in the list was quadratic.
    let known: HashSet<&str> = names.iter().copied().collect();
    let Some(defs) = &doc.services else { return };
    for (name, entry) in &defs.value {
        let ServiceEntry::Full(def) = &entry.value else {
            continue;
        };
        if left_out.contains_key(&name.value) {
            continue;
        }
        // `network_mode: service:NAME` needs NAME running in this instance.
        if let Some(mode) = &def.network_mode
            && let Some(target) = mode.value.strip_prefix("service:")
        {
            let why = if target == name.value {
                Some("its own".to_string())
            } else if left_out.contains_key(target) {
                Some(format!("`{target}`, which this instance leaves out"))
            } else if !known.contains(target) {
                Some(format!("`{target}`, which is not a service"))
            } else {
                None
            };
            if let Some(why) = why {
                problems.push(
                    Problem::new(format!("`{}` shares the network of {why}", name.value))
                        .at(&file.at(&mode.referenced))
                        .help(
                            did_you_mean(target, names.iter().copied())
                                .unwrap_or_else(|| format!("services are: {}", names.join(", "))),
                        ),
                );
            }
        }
        let Some(depends) = &def.depends_on else {
            continue;
        };
        let targets: Vec<&Spanned<String>> = match &depends.value {
            DependsOn::List(names) => names.iter().collect(),
            DependsOn::Map(pairs) => pairs.iter().map(|(n, _)| n).collect(),
        };
        // Waiting for a service to complete means it must be a oneshot.
        if let DependsOn::Map(pairs) = &depends.value {
            for (target, detail) in pairs {
                let Some(condition) = &detail.condition else {
                    continue;
                };
                let is_oneshot = services
                    .iter()
                    .find(|s| s.name == target.value)
                    .map(|s| s.oneshot);
                if condition.value == "service_completed_successfully" && is_oneshot == Some(false)
                {
                    problems.push(
                        Problem::new(format!(
                            "`{}` waits for `{}` to complete, but `{}` is not a oneshot",
                            name.value, target.value, target.value
                        ))
                        .at(&file.at(&condition.referenced))
                        .help(format!(
                            "add `oneshot: true` to `{}`: it then runs to completion once per start, before its dependents",
                            target.value
                        )),
                    );
                }
            }
        }
        for target in targets {
            // Made only for a problem: most dependencies have none.
            let at = || file.at(&target.referenced);
            if target.value == name.value {
                problems.push(
                    Problem::new(format!("service `{}` depends on itself", name.value)).at(&at()),
                );
            } else if !known.contains(target.value.as_str())
                && !left_out.contains_key(&target.value)
            {
                problems.push(
                    Problem::new(format!(
                        "`{}` depends on `{}`, which is not a service",
                        name.value, target.value
                    ))
                    .at(&at())
                    .label("unknown service")
                    .help(
                        did_you_mean(&target.value, names.iter().copied())
                            .unwrap_or_else(|| format!("services are: {}", names.join(", "))),
                    ),
                );
            }
        }
    }
    // Cycles: a depth-first walk that reports each cycle once, at the
    // dependency that closes it.
    let by_name: HashMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on the path, 2 = done
    fn visit<'a>(
        name: &'a str,
        by_name: &HashMap<&'a str, &'a Service>,
        state: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(name, 1);
        path.push(name);
        for dep in &by_name[name].depends_on {
            let dep = dep.as_str();
            if !by_name.contains_key(dep) || dep == name {
                continue;
            }
            match state.get(dep) {
                Some(1) => {
                    let start = path.iter().position(|n| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(dep.to_string());
                    cycles.push(cycle);
                }
                Some(_) => {}
                None => visit(dep, by_name, state, path, cycles),
            }
        }
        path.pop();
        state.insert(name, 2);
    }
    let mut cycles = Vec::new();
    for service in services {
        if !state.contains_key(service.name.as_str()) {
            visit(
                &service.name,
                &by_name,
                &mut state,
                &mut Vec::new(),
                &mut cycles,
            );
        }
    }
    for cycle in cycles {
        let last = &cycle[cycle.len() - 2];
        let closing = &cycle[cycle.len() - 1];
        let at = depends_location(doc, file, last, closing);
        let mut problem = Problem::new(format!("dependency cycle: {}", cycle.join(" → ")))
            .label("closes the cycle")
            .help("services start in depends_on order, so a cycle can never start; remove one of these dependencies");
        if let Some(at) = at {
            problem = problem.at(&at);
        }
        problems.push(problem);
    }
}

fn depends_location(
    doc: &crate::template::schema::Document,
    file: &Loaded,
    service: &str,
    target: &str,
) -> Option<Location> {
    let defs = doc.services.as_ref()?;
    let (_, entry) = defs.value.iter().find(|(k, _)| k.value == service)?;
    let ServiceEntry::Full(def) = &entry.value else {
        return None;
    };
    let listed = def
        .depends_on
        .as_ref()
        .and_then(|depends| match &depends.value {
            DependsOn::List(names) => names.iter().find(|n| n.value == target),
            DependsOn::Map(pairs) => pairs.iter().map(|(n, _)| n).find(|n| n.value == target),
        });
    if let Some(found) = listed {
        return Some(file.at(&found.referenced));
    }
    // A dependency `network_mode: service:NAME` makes.
    let mode = def.network_mode.as_ref()?;
    (mode.value.strip_prefix("service:") == Some(target)).then(|| file.at(&mode.referenced))
}

/// Two services of one instance cannot publish the same host port. Each
/// (port, protocol) keeps who took it on all addresses and on each address,
/// so the check stays linear in the number of ports.
fn check_host_ports(
    services: &[Service],
    locations: &HashMap<String, Location>,
    problems: &mut Problems,
) {
    #[derive(Default)]
    struct Taken<'a> {
        /// The first publisher on all addresses.
        everywhere: Option<&'a str>,
        /// The first publisher on each address.
        by_ip: HashMap<&'a str, &'a str>,
        /// The first publisher on any one address.
        any_ip: Option<&'a str>,
    }
    let mut taken: HashMap<(u16, Protocol), Taken> = HashMap::new();
    for service in services {
        for port in &service.ports {
            let Some(host_port) = port.host_port else {
                continue;
            };
            let slot = taken.entry((host_port, port.protocol)).or_default();
            let clash = match &port.host_ip {
                None => slot.everywhere.or(slot.any_ip),
                Some(ip) => slot
                    .everywhere
                    .or_else(|| slot.by_ip.get(ip.as_str()).copied()),
            };
            if let Some(other_service) = clash {
                let mut problem = Problem::new(format!(
                    "host port {host_port}/{} is published by both `{other_service}` and `{}`",
                    port.protocol.as_str(),
                    service.name
                ))
                .label("second publisher")
                .help("give one of them another host port, or leave the host port out to let Docker choose");
                if let Some(at) = locations.get(&service.name) {
                    problem = problem.at(at);
                }
                problems.push(problem);
            }
            match &port.host_ip {
                None => {
                    slot.everywhere.get_or_insert(&service.name);
                }
                Some(ip) => {
                    slot.by_ip.entry(ip).or_insert(&service.name);
                    slot.any_ip.get_or_insert(&service.name);
                }
            }
        }
    }
}

/// A routed instance's services cannot publish a port the host's router
/// listens on for its routes: one of the two would fail to start, at
/// apply, with Docker's "address already in use".
fn check_router_ports(
    instance: &str,
    services: &[Service],
    router: &crate::model::route::Router,
    locations: &HashMap<String, Location>,
    problems: &mut Problems,
) {
    for service in services {
        for port in &service.ports {
            let (Some(host_port), Some(key)) = (port.host_port, router.port_taken_by(port)) else {
                continue;
            };
            let mut problem = Problem::new(format!(
                "`{}` of instance `{instance}` publishes host port {host_port}/tcp, where the host's router listens for the instance's routes (its `{key}`)",
                service.name
            ))
            .label("publishes the router's port")
            .help("let the router serve the service (it already routes its domains), or publish another port; the router's ports are `http_port` and `https_port` in `router:`");
            if let Some(at) = locations.get(&service.name) {
                problem = problem.at(at);
            }
            if let Some(at) = &router.declared_at {
                problem = problem.also_at(
                    at,
                    format!(
                        "the router: ports {} and {}",
                        router.http_port, router.https_port
                    ),
                );
            }
            problems.push(problem);
        }
    }
}

/// Orders services so that each comes after what it depends on, keeping the
/// template's order otherwise (stable output): each step places the first
/// service, in template order, whose dependencies are all placed. A heap of
/// ready positions keeps this linear-logarithmic; scanning and removing from
/// the list made big templates quadratic.
fn dependency_order(services: Vec<Service>) -> Vec<Service> {
    let position: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut waiting_on: Vec<usize> = services.iter().map(|s| s.depends_on.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); services.len()];
    for (i, service) in services.iter().enumerate() {
        for dep in &service.depends_on {
            dependents[position[dep.as_str()]].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..services.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(services.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &dependent in &dependents[i] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    assert_eq!(
        order.len(),
        services.len(),
        "cycles are rejected before ordering"
    );
    let mut slots: Vec<Option<Service>> = services.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each service is placed once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_sources_are_per_instance_and_only_used_ones_are_kept() {
        let text = "app: shop\nservices:\n  db:\n    image: x\n    secrets: {PW: pw}\n\
                    secrets:\n  pw: {file: \"{{ instance }}/pw\"}\n  unused: {command: \"false\"}\n\
                    instances:\n  live: {}\n";
        let app =
            crate::template::parse(std::path::Path::new("conf/unitgen.yaml"), text.into()).unwrap();
        let template = Template {
            app,
            deployments: None,
        };
        let instance = compile(&template, "live", &Overrides::default()).unwrap();
        let names: Vec<&str> = instance.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pw"], "an unused secret is never read");
        // Relative to the file that declares it.
        assert_eq!(
            instance.secrets[0].source,
            SecretSource::File("conf/live/pw".into())
        );
        assert_eq!(
            instance.services[0].secrets,
            [SecretEnv {
                variable: "PW".into(),
                secret: "pw".into(),
                digest: None,
            }]
        );
        assert!(instance.services[0].environment.is_empty());
    }

    #[test]
    fn the_etcd_address_is_an_address_or_a_host_name() {
        let address = |address: &str| {
            let text = format!(
                "app: shop\nservices:\n  web:\n    image: x\n    ports: [\"80\"]\n\
                 etcd: {{endpoints: \"http://127.0.0.1:2379\", address: {}}}\ninstances:\n  live: {{}}\n",
                serde_json::to_string(address).unwrap()
            );
            let app = crate::template::parse(std::path::Path::new("u.yaml"), text).unwrap();
            let template = Template {
                app,
                deployments: None,
            };
            compile(&template, "live", &Overrides::default())
                .map(|i| i.discovery.unwrap().address.unwrap())
        };
        assert_eq!(address("10.0.0.5").unwrap(), "10.0.0.5");
        assert_eq!(address("node-1.example.com").unwrap(), "node-1.example.com");
        // Written as Docker writes a published IPv6 address, `[::1]:8080`.
        assert_eq!(address("2001:db8::5").unwrap(), "[2001:db8::5]");
        // It is announced in etcd, and from there written into consumers'
        // env files and the router's backend URLs.
        for bad in ["10.0.0.5\nPATH=/tmp", "a b", "evil.example/x", "$(id)", ""] {
            let problems = address(bad).unwrap_err();
            assert!(
                problems.0[0]
                    .message
                    .contains("neither an IP address nor a host name")
                    && problems.0[0].at.is_some(),
                "{bad:?}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_big_app_compiles_on_all_cores_as_in_one_pass() {
        // Enough services for several shares, with mistakes in each (an
        // unknown restart policy, an undefined value) and `--set` keys
        // that only some share's expressions use.
        let mut text = String::from("app: big\nservices:\n");
        for i in 0..(4 * SERVICES_PER_THREAD) {
            let restart = if i % 50 == 7 { "sometimes" } else { "always" };
            let env = match i % 70 {
                3 => "{{ nope }}",
                5 => "{{ late }}",
                _ => "{{ early }}",
            };
            text.push_str(&format!(
                "  s{i}:\n    image: x\n    restart: {restart}\n    environment: {{A: \"{env}\"}}\n"
            ));
        }
        text.push_str("instances:\n  live: {early: e}\n");
        let app = crate::template::parse(std::path::Path::new("u.yaml"), text).unwrap();
        let template = Template {
            app,
            deployments: None,
        };
        let overrides = Overrides {
            set: vec![("late".into(), "l".into())],
            ..Overrides::default()
        };
        let found = compile(&template, "live", &overrides).unwrap_err();
        let messages: Vec<String> = (found.0.iter())
            .map(|p| format!("{} at {:?}", p.message, p.at.as_ref().map(|at| at.span)))
            .collect();
        let restarts = messages.iter().filter(|m| m.contains("sometimes")).count();
        assert_eq!(restarts, 5, "{messages:#?}");
        assert_eq!(
            messages.iter().filter(|m| m.contains("nope")).count(),
            4,
            "{messages:#?}"
        );
        assert!(
            !messages.iter().any(|m| m.contains("--set late")),
            "`late` is used by a later share: {messages:#?}"
        );
        // In file order, as one pass finds them.
        let offsets: Vec<usize> = (found.0.iter())
            .filter_map(|p| p.at.as_ref().map(|at| at.span.offset()))
            .collect();
        assert!(offsets.is_sorted(), "{messages:#?}");
    }

    #[test]
    fn one_value_put_into_text_is_what_the_engine_writes() {
        let values: BTreeMap<String, Value> = [
            ("domain", Value::from("shop.example.com")),
            ("tag", Value::from("1.10")),
            ("list", Value::from(vec!["a", "b"])),
            ("empty", Value::from("")),
            ("none", Value::from("a value named none")),
            ("debug", values::scalar_value("true")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let env = template_env();
        let context = Value::from(values.clone());
        for text in [
            "https://{{ domain }}/svc",
            "{{domain}}",
            "{{   tag   }}",
            "x{{ list }}y",
            "{{ empty }}",
            "}} {{ domain }} }}",
            "a { b {{ tag }} c } d",
            "DEBUG={{ debug }}",
        ] {
            let (fast, _) = substitute_one(text, &values).expect(text);
            assert_eq!(
                fast,
                env.render_str(text, context.clone()).unwrap(),
                "{text:?}"
            );
        }
        // A boolean is written as YAML and compose write it, not as Jinja.
        for (text, written) in [
            ("DEBUG={{ debug }}", "DEBUG=true"),
            ("{{ not debug }}", "false"),
            ("{{ debug and 'yes' }}", "yes"),
        ] {
            assert_eq!(env.render_str(text, context.clone()).unwrap(), written);
        }
        for text in [
            "{{ domain | upper }}",
            "{{- domain }}",
            "{{ domain }}{{ tag }}",
            "{{ domain }}{% if true %}x{% endif %}",
            "{# c #}{{ domain }}",
            "{{ nope }}",
            "{{ none }}",
            "{{ domain }}\n",
            "{{ do main }}",
            "{{ 1domain }}",
            "{{\tdomain }}",
        ] {
            assert_eq!(substitute_one(text, &values), None, "{text:?}");
        }
    }

    fn service(name: &str, depends_on: &[&str]) -> Service {
        Service {
            name: name.into(),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            ..Service::default()
        }
    }

    #[test]
    fn dependencies_first_template_order_otherwise() {
        let services = vec![
            service("web", &["api", "cache"]),
            service("api", &["db", "db"]),
            service("cache", &[]),
            service("db", &[]),
            service("worker", &["db"]),
        ];
        let order: Vec<String> = dependency_order(services)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(order, ["cache", "db", "api", "web", "worker"]);
    }
}
