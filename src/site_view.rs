//! What `dns` and `docs` read of a deployment: the hosts with their public
//! addresses, and every deployed instance compiled (its routes included),
//! with the host that runs it. Both commands take only this view, so
//! they work the same from a single app's deployments file as from a site
//! file that lists many apps.

use std::net::IpAddr;

use crate::compile::{Overrides, compile};
use crate::diagnostic::{Location, Problems};
use crate::model;
use crate::template::Template;

#[derive(Debug, Clone)]
pub struct SiteView {
    /// The file it was read from, as typed: for titles and messages.
    pub source: String,
    pub hosts: Vec<Host>,
    pub apps: Vec<App>,
}

/// A machine that runs instances, as the outside world reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// Its public addresses: the A and AAAA records of the domains it serves.
    pub addresses: Vec<IpAddr>,
    /// A DNS name the host is known by (a provider's name for the machine
    /// or its load balancer): its domains are CNAMEs to it instead.
    pub cname: Option<String>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub instances: Vec<Deployed>,
}

/// One instance of an app (its routes included) and where it runs.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub instance: model::Instance,
    /// The host that runs it; None when the file does not say (a single
    /// app's deployments file runs wherever it is applied).
    pub host: Option<String>,
    /// Every name its routes answer for, where it was written: a record
    /// that cannot be made is refused there.
    pub names_at: Vec<(String, Location)>,
}

impl SiteView {
    /// The view of a single app's template or deployments file: every
    /// declared instance compiled, with no host (the file does not name
    /// one).
    pub fn from_template(template: &Template, overrides: &Overrides) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let mut instances = Vec::new();
        let mut name = None;
        for instance in template.instance_names() {
            match compile(template, &instance, overrides) {
                Ok(instance) => {
                    name.get_or_insert_with(|| instance.app.clone());
                    instances.push(Deployed {
                        names_at: template.route_names_at(&instance.instance),
                        instance,
                        host: None,
                    });
                }
                Err(found) => problems.extend_unique(found),
            }
        }
        let apps = match name {
            Some(name) => vec![App { name, instances }],
            None => Vec::new(),
        };
        problems.into_result(SiteView {
            source: template.source_name(),
            hosts: Vec::new(),
            apps,
        })
    }

    /// The view of a site file: its hosts, and every instance of every app
    /// compiled, with the host the site assigns it to.
    pub fn from_site(site: &crate::site::Site, overrides: &Overrides) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let mut apps = Vec::new();
        for app in &site.apps {
            let mut instances = Vec::new();
            for placed in &app.instances {
                match compile(&app.template, &placed.instance, overrides) {
                    Ok(instance) => instances.push(Deployed {
                        names_at: app.template.route_names_at(&placed.instance),
                        instance,
                        host: Some(placed.host.clone()),
                    }),
                    Err(found) => problems.extend_unique(found),
                }
            }
            apps.push(App {
                name: app.name.clone(),
                instances,
            });
        }
        let hosts = (site.hosts.iter())
            .map(|host| Host {
                name: host.name.clone(),
                addresses: host.addresses.clone(),
                cname: host.cname.clone(),
            })
            .collect();
        problems.into_result(SiteView {
            source: site.file.name().to_string(),
            hosts,
            apps,
        })
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Every deployed instance with its app, in file order.
    pub fn deployed(&self) -> impl Iterator<Item = (&App, &Deployed)> {
        self.apps
            .iter()
            .flat_map(|app| app.instances.iter().map(move |d| (app, d)))
    }
}
