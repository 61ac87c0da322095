//! One app as a Mermaid flowchart: its services, `depends_on` edges, and
//! the domains routed to them. Node ids are generated (`s0`, `d0`): a
//! service named `end` or a domain with dots would break Mermaid's syntax;
//! every label is quoted and escaped.

use crate::site_view::App;

/// The diagram's text, without the Markdown fence.
pub fn flowchart<'a>(app: &'a App) -> String {
    let mut text = String::from("flowchart LR\n");
    // Services as the first instance has them (every instance has the same
    // services, but for those an instance leaves out).
    let mut services: Vec<(&str, &str)> = Vec::new();
    let mut edges: Vec<(&str, &str)> = Vec::new();
    for deployed in &app.instances {
        for service in &deployed.instance.services {
            if !services.iter().any(|(name, _)| *name == service.name) {
                services.push((&service.name, image_name(&service.image)));
            }
            for dependency in &service.depends_on {
                if !edges.contains(&(&service.name, dependency)) {
                    edges.push((&service.name, dependency));
                }
            }
        }
    }
    let id = |name: &str| {
        services
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| format!("s{i}"))
    };
    text.push_str(&format!("  subgraph app[\"{}\"]\n", label(&app.name)));
    for (i, (name, image)) in services.iter().enumerate() {
        text.push_str(&format!(
            "    s{i}[\"{}<br/>{}\"]\n",
            label(name),
            label(image)
        ));
    }
    text.push_str("  end\n");
    for (from, to) in &edges {
        if let (Some(from), Some(to)) = (id(from), id(to)) {
            text.push_str(&format!("  {from} --> {to}\n"));
        }
    }
    let mut domains: Vec<&str> = Vec::new();
    // The node of a domain, declared the first time it is seen.
    let mut node =
        |domain: &'a str, text: &mut String| match domains.iter().position(|d| *d == domain) {
            Some(d) => d,
            None => {
                domains.push(domain);
                text.push_str(&format!(
                    "  d{}([\"{}\"])\n",
                    domains.len() - 1,
                    label(domain)
                ));
                domains.len() - 1
            }
        };
    for deployed in &app.instances {
        for route in &deployed.instance.routes {
            let Some(service) = id(&route.service) else {
                continue;
            };
            let path = route.path.as_deref().unwrap_or("");
            let edge = label(&format!(
                "{}{path} → :{}",
                deployed.instance.instance, route.port
            ));
            for domain in &route.hosts {
                let d = node(domain, &mut text);
                text.push_str(&format!("  d{d} -->|\"{edge}\"| {service}\n"));
            }
            // An alias is redirected to the route's first name.
            let Some(main) = route.hosts.first() else {
                continue;
            };
            for alias in &route.aliases {
                let a = node(alias, &mut text);
                let main = node(main, &mut text);
                text.push_str(&format!("  d{a} -.->|\"redirect\"| d{main}\n"));
            }
        }
    }
    text
}

/// The image without its tag or digest: the tag differs per instance and
/// is in the tables.
fn image_name(image: &str) -> &str {
    crate::compile::syntax::image_parts(image).0
}

/// Text inside a quoted Mermaid label: quotes and the characters Mermaid
/// reads as HTML or syntax are written as its entity codes (`#quot;`).
pub fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in super::visible(text).chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '`' => out.push_str("#96;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests_are_cut_but_registry_ports_kept() {
        assert_eq!(image_name("nginx:1.27"), "nginx");
        assert_eq!(
            image_name("127.0.0.1:5055/x/busybox:1"),
            "127.0.0.1:5055/x/busybox"
        );
        assert_eq!(
            image_name("127.0.0.1:5055/x/busybox"),
            "127.0.0.1:5055/x/busybox"
        );
        assert_eq!(image_name("redis@sha256:abc"), "redis");
    }

    #[test]
    fn labels_cannot_close_their_quotes() {
        assert_eq!(label(r#"a"b<c>|#"#), "a#quot;b#lt;c#gt;#124;#35;");
    }
}
