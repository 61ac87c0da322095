//! `unitgen import`: write the unitgen template equivalent to a compose file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use miette::{IntoDiagnostic, NamedSource, Result, WrapErr, miette};

use super::Outcome;
use super::output::{self, out};
use crate::compile::{compile, syntax};
use crate::import::{Options, dotenv_warnings, import_files, parse_dotenv};
use crate::template::{Template, display_path, parse};

/// The files compose looks for, in its order (compose-go's
/// `DefaultFileNames`).
const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override files compose merges over the file it finds, in its order
/// (compose-go's `DefaultOverrideFileNames`: the first one there, whichever
/// of the names above the compose file has).
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The compose file [default: the first of compose.yaml, compose.yml,
    /// docker-compose.yml and docker-compose.yaml found here]. As
    /// `docker compose up` run in its folder, the override file there
    /// (compose.override.yml, compose.override.yaml,
    /// docker-compose.override.yml or docker-compose.override.yaml) is merged
    /// over it, when the compose file has one of those names.
    pub compose: Option<PathBuf>,
    /// Compose files merged in order, as compose's `-f FILE -f FILE…`
    /// (repeatable): exactly these, no override file looked for. The first
    /// one's folder is the project's.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "compose"
    )]
    pub files: Vec<PathBuf>,
    /// Write the template to FILE instead of printing it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With --output: replace FILE if it exists (atomically; a link stays a
    /// link). A device or a pipe is written into without --force.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// The app name [default: the compose file's `name:`, else its folder's
    /// name, made a valid app name].
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub app: Option<String>,
    /// The instance to declare; it gets the compose variables' values.
    #[arg(long, value_name = "NAME", default_value = "default", value_parser = parse_name)]
    pub instance: String,
    /// Also import the services of compose profile NAME (repeatable; `*`
    /// for all), as `docker compose --profile NAME up` runs them. Without
    /// it, the profiles of `COMPOSE_PROFILES` in `.env` are active, or
    /// else the empty name (`profiles: [""]`); the services of other
    /// profiles are left out, as `docker compose up` leaves them out.
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,
}

pub fn parse_name(name: &str) -> Result<String, String> {
    syntax::check_app_or_instance_name(name)
        .map(|()| name.to_string())
        .map_err(|msg| format!("{msg} (try `{}`)", syntax::suggest_name(name, '_')))
}

pub fn run(args: ImportArgs) -> Result<Outcome> {
    let paths = match (&args.compose, args.files.is_empty()) {
        (None, false) => args.files.clone(),
        (Some(path), _) => with_override(path.clone()),
        (None, true) => match compose_file_variable()? {
            Some(paths) => paths,
            None => with_override(find_compose_file()?),
        },
    };
    let path = paths[0].clone();
    if let Some(output) = &args.output
        && output::would_replace(output)
        && !args.force
    {
        return Err(miette!(
            help = "pass --force to replace it",
            "{} exists already",
            crate::diagnostic::shown_path(output)
        ));
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        let bytes = crate::template::read_capped(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", crate::diagnostic::shown_path(path)))?;
        // Not UTF-8: said where, as for templates.
        let text = crate::template::utf8(path, bytes)?;
        files.push(Arc::new(NamedSource::new(display_path(path), text)));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = std::fs::canonicalize(dir.unwrap_or(Path::new(".")))
        .into_diagnostic()
        .wrap_err("cannot resolve the compose file's folder")?;
    // Compose reads `.env` beside the compose file for its variables.
    // Shown beside the compose file as the user named it.
    let shown_dotenv = display_path(&path.with_file_name(".env"));
    let (dotenv, beside_notes) = match crate::template::read_capped_text(&dir.join(".env")) {
        Ok(text) => (parse_dotenv(&text), dotenv_warnings(&text, &shown_dotenv)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
        Err(e) => {
            return Err(miette::miette!(
                "cannot read {}: {e}",
                crate::diagnostic::shown_path(&dir.join(".env"))
            ));
        }
    };
    let profiles = crate::import::active_profiles(&args.profile, &dotenv);
    let options = Options {
        app: args.app.clone(),
        instance: args.instance.clone(),
        dir,
        home: std::env::var_os("HOME").map(PathBuf::from),
        dotenv,
        beside_notes,
        profiles,
        read: crate::template::read_capped_text,
    };
    let imported = import_files(&files, &options)?;
    for warning in &imported.warnings {
        // One line each, as in the template's header: a line feed in a
        // value it quotes (a container name) is shown as `\n`, so that no
        // value starts a line of its own on the terminal.
        let shown = crate::diagnostic::shown(&warning.to_string());
        if warning.file.is_some() {
            // Its place is part of it.
            crate::say!("warning: {shown}");
            continue;
        }
        crate::say!(
            "warning: {}:{}:{}: {shown}",
            files[0].name(),
            warning.line,
            warning.column
        );
    }

    // The template must compile as written; if it does not, that is a gap
    // in the importer, reported against the output.
    let shown = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<imported template>"));
    let check = parse(&shown, imported.yaml.clone()).and_then(|app| {
        let template = Template {
            app,
            deployments: None,
        };
        compile(&template, &args.instance, &Default::default())
    });

    match &args.output {
        Some(output) => output::write_named_file(output, imported.yaml.as_bytes())
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", crate::diagnostic::shown_path(output)))?,
        None => out!("{}", imported.yaml)?,
    }
    let services = match imported.services {
        1 => "1 service".to_string(),
        n => format!("{n} services"),
    };
    let warnings = match imported.warnings.len() {
        0 => "everything carried over".to_string(),
        1 => "1 warning, also listed at the top of the template".to_string(),
        n => format!("{n} warnings, also listed at the top of the template"),
    };
    let into = match &args.output {
        Some(output) => format!(" into {}", crate::diagnostic::shown_path(output)),
        None => String::new(),
    };
    let names: Vec<&str> = files.iter().map(|f| f.name()).collect();
    crate::say!(
        "imported {services} from {}{into} as app `{}`, instance `{}`: {warnings}",
        names.join(" + "),
        imported.app,
        args.instance
    );
    if let Err(problems) = check {
        crate::say!(
            "the imported template does not compile yet: fix these, then run `unitgen validate`"
        );
        return Err(problems.into());
    }
    Ok(Outcome::Clean)
}

/// The compose file, and the override file beside it that `docker compose
/// up` run in its folder merges over it, if any.
fn with_override(path: PathBuf) -> Vec<PathBuf> {
    let default_name = path
        .file_name()
        .is_some_and(|name| COMPOSE_FILES.iter().any(|f| name == *f));
    let over = OVERRIDE_FILES
        .iter()
        .map(|name| path.with_file_name(name))
        .find(|over| default_name && over.is_file());
    std::iter::once(path).chain(over).collect()
}

/// The files `COMPOSE_FILE` in `.env` here names (`a.yml:b.yml`, split at
/// `COMPOSE_PATH_SEPARATOR`, else `:`), which compose reads instead of
/// looking for its files when given none (import does not read the
/// shell's variables, here as for the compose variables).
fn compose_file_variable() -> Result<Option<Vec<PathBuf>>> {
    let text = match crate::template::read_capped_text(Path::new(".env")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(miette!("cannot read .env: {e}")),
    };
    let vars = parse_dotenv(&text);
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let Some(files) = get("COMPOSE_FILE") else {
        return Ok(None);
    };
    let separator = get("COMPOSE_PATH_SEPARATOR").unwrap_or_else(|| ":".into());
    Ok(Some(
        files.split(separator.as_str()).map(PathBuf::from).collect(),
    ))
}

/// The compose file `docker compose up` finds: the first of its names
/// here, else in the closest folder above that has one (compose-go's
/// `WithDefaultConfigPath`). Shown as reached from here (`../compose.yaml`).
fn find_compose_file() -> Result<PathBuf> {
    let here = std::env::current_dir()
        .into_diagnostic()
        .wrap_err("cannot read the current folder")?;
    let mut up = PathBuf::new();
    for folder in here.ancestors() {
        if let Some(name) = COMPOSE_FILES.iter().find(|n| folder.join(n).is_file()) {
            return Ok(up.join(name));
        }
        up.push("..");
    }
    Err(miette!(
        help = "pass the compose file: `unitgen import path/to/docker-compose.yml`",
        "no compose file here or in any folder above (looked for {})",
        COMPOSE_FILES.join(", ")
    ))
}
