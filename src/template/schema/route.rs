//! The routing keys: an instance's `routes:` (its domains, in the
//! deployments file beside its values) and the host's `router:` block (the
//! Traefik that serves them). A service's `health_path` is in the app
//! template, with the service.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Name, Words};
use crate::template::spanned::Spanned;

/// An instance's `routes:`, as written.
pub type RouteDecls = Spanned<Vec<Spanned<RouteDecl>>>;

/// One route: requests for these host names (and path prefix) go to this
/// service's container port.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouteDecl {
    /// The names served: `blog.example.com`, or a list. All are served as
    /// they are; certificates cover them all.
    /// (Required: checked when compiled, so that its absence is reported
    /// with the file's other problems.)
    #[schemars(with = "Words")]
    pub hosts: Option<Spanned<Words>>,
    /// Names that redirect (permanently, path kept) to the first of
    /// `hosts`: `[www.blog.example.com]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub aliases: Option<Vec<Name>>,
    /// Only requests whose path starts with this: `/api`. The service sees
    /// the whole path.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// The service (of the app template) that answers.
    #[schemars(with = "String")]
    pub service: Option<Name>,
    /// The container port it answers on; the service must publish it
    /// (`ports:`), with a fixed host port the router connects to.
    #[schemars(with = "u16")]
    pub port: Option<Spanned<u16>>,
    /// `acme` (default: a certificate from Let's Encrypt or the configured
    /// CA), `off` (plain HTTP), or `{certificate: FILE, key: FILE}`.
    #[schemars(with = "Option<TlsDecl>")]
    pub tls: Option<Spanned<TlsDecl>>,
    /// Redirect HTTP to HTTPS (default: true when TLS is on).
    #[schemars(with = "Option<bool>")]
    pub https_redirect: Option<Spanned<bool>>,
    /// An htpasswd file (bcrypt, `htpasswd -B`): only its users get in.
    /// Relative to the file that declares the route.
    #[schemars(with = "Option<String>")]
    pub basic_auth: Option<Spanned<String>>,
}

/// How a route's HTTPS is served.
#[derive(Debug, Clone)]
pub enum TlsDecl {
    /// `acme` or `off`, checked when compiled.
    Mode(String),
    Files(TlsFiles),
}

/// A certificate and its key, PEM files on the machine running unitgen
/// (relative to the file that names them).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    #[schemars(with = "String")]
    pub certificate: Spanned<String>,
    /// Its private key.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
}

/// The host's router (`router:` in the deployments file): one Traefik per
/// host, shared by every app and instance that has routes, so every
/// `router:` of a host must say the same (apply refuses one that differs
/// from the router other instances use, unless `--replace-router`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RouterDecl {
    /// The Traefik v3 image (default: the official `traefik` image, pinned).
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// The HTTP entry point's port (default 80). ACME's HTTP-01 challenge
    /// reaches the host on this port.
    #[schemars(with = "Option<u16>")]
    pub http_port: Option<Spanned<u16>>,
    /// The HTTPS entry point's port (default 443).
    #[schemars(with = "Option<u16>")]
    pub https_port: Option<Spanned<u16>>,
    /// Listen on this address only (default: every address of the host).
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    /// The host folder for the router's files (default
    /// `/var/lib/unitgen/router`): one dynamic configuration file per
    /// instance, copied certificates, and the ACME account and certificates.
    #[schemars(with = "Option<String>")]
    pub directory: Option<Spanned<String>>,
    /// Certificates from an ACME CA for routes with `tls: acme`.
    pub acme: Option<AcmeDecl>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AcmeDecl {
    /// The account's contact address (the CA mails expiry warnings).
    #[schemars(with = "Option<String>")]
    pub email: Option<Spanned<String>>,
    /// The CA's directory URL (default Let's Encrypt's production one).
    #[schemars(with = "Option<String>")]
    pub ca_server: Option<Spanned<String>>,
    /// A PEM file on the host the router trusts for the CA's own HTTPS
    /// (a private or test CA such as pebble).
    #[schemars(with = "Option<String>")]
    pub ca_certificate: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for TlsDecl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TlsVisitor;
        impl<'de> Visitor<'de> for TlsVisitor {
            type Value = TlsDecl;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`acme`, `off`, or `{certificate: FILE, key: FILE}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TlsDecl, E> {
                Ok(TlsDecl::Mode(v.to_string()))
            }
            // YAML 1.1 readers take a bare `off` for false: say it as written.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TlsDecl, E> {
                Ok(TlsDecl::Mode(if v { "acme" } else { "off" }.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TlsDecl, A::Error> {
                TlsFiles::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(TlsDecl::Files)
            }
        }
        d.deserialize_any(TlsVisitor)
    }
}

impl JsonSchema for TlsDecl {
    fn schema_name() -> Cow<'static, str> {
        "TlsDecl".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`acme` (default), `off`, or certificate and key files.",
            "anyOf": [
                {"type": "string", "enum": ["acme", "off"]},
                {"type": "boolean"},
                generator.subschema_for::<TlsFiles>()
            ]
        })
    }
}
