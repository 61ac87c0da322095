//! The site file: every host and every deployed app in one file. Each app
//! is what a deployments file holds today (`template:`, `defaults:`,
//! `instances:`, `backup:`, `secrets:`, `etcd:`, `fleet:`), under its name.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Document, EtcdDecl, Name, Words};
use crate::template::spanned::Spanned;

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SiteDoc {
    /// The machines, by name (what `--host` and an instance's `host:` say).
    #[schemars(with = "Option<IndexMap<String, HostDecl>>")]
    pub hosts: Option<Spanned<IndexMap<Name, Spanned<HostDecl>>>>,
    /// The deployed apps, by name (each template's `app:`).
    #[schemars(with = "IndexMap<String, Document>")]
    pub apps: Option<Spanned<IndexMap<Name, Spanned<Document>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostDecl {
    /// The host's public address, IPv4 or IPv6, or a list of both: the
    /// A and AAAA records of the domains it serves (`unitgen dns`).
    #[schemars(with = "Words")]
    pub address: Option<Spanned<Words>>,
    /// The etcd cluster this host's instances announce to and find each
    /// other through, for apps without an `etcd:` of their own.
    pub etcd: Option<EtcdDecl>,
    /// The DNS name the host is known by (a provider's name for the machine
    /// or its load balancer): the domains it serves are CNAMEs to it.
    #[schemars(with = "Option<String>")]
    pub cname: Option<Spanned<String>>,
}
