//! The proxy's router snapshot: routes and services frozen at build time, matched by hosts,
//! paths (prefix, longest first; `~` regex paths too), methods and headers.

use std::sync::Arc;

use serde_json::Value;

use super::store::Config;

/// One compiled route.
#[derive(Debug, Clone)]
struct CompiledRoute {
    service_id: Option<String>,
    hosts: Vec<String>,
    paths: Vec<PathRule>,
    methods: Vec<String>,
    headers: Vec<(String, Vec<String>)>,
    strip_path: bool,
    preserve_host: bool,
    regex_priority: i64,
    created_at: f64,
    id: String,
}

#[derive(Debug, Clone)]
enum PathRule {
    Prefix(String),
    Regex(regex::Regex),
}

/// A router match.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub(crate) service: Value,
    /// Length of the matched path prefix (for `strip_path`).
    pub(crate) matched_prefix: usize,
    pub(crate) strip_path: bool,
    pub(crate) preserve_host: bool,
}

/// Frozen routes + services.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) seq: u64,
    config: Arc<Config>,
    routes: Vec<CompiledRoute>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Router {
    /// Compiles the routes of `config`.
    pub(crate) fn build(seq: u64, config: Arc<Config>) -> Self {
        let mut routes = Vec::new();
        for r in config.routes.values() {
            let protocols = strings(&r["protocols"]);
            if !protocols.iter().any(|p| p == "http" || p == "https") {
                continue;
            }
            let paths = strings(&r["paths"])
                .into_iter()
                .filter_map(|p| match p.strip_prefix('~') {
                    Some(re) => regex::Regex::new(&format!("^(?:{re})"))
                        .ok()
                        .map(PathRule::Regex),
                    None => Some(PathRule::Prefix(p)),
                })
                .collect();
            let headers = r["headers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.to_ascii_lowercase(),
                                strings(v)
                                    .into_iter()
                                    .map(|s| s.to_ascii_lowercase())
                                    .collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            routes.push(CompiledRoute {
                service_id: r["service"]["id"].as_str().map(str::to_owned),
                hosts: strings(&r["hosts"])
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
                paths,
                methods: strings(&r["methods"])
                    .into_iter()
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
                headers,
                strip_path: r["strip_path"].as_bool().unwrap_or(true),
                preserve_host: r["preserve_host"].as_bool().unwrap_or(false),
                regex_priority: r["regex_priority"].as_i64().unwrap_or(0),
                created_at: r["created_at"].as_f64().unwrap_or(0.0),
                id: r["id"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Self {
            seq,
            config,
            routes,
        }
    }

    /// Finds the best route for a request.
    pub(crate) fn find(
        &self,
        method: &str,
        host: Option<&str>,
        path: &str,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Matched> {
        let host = host.map(|h| strip_port(h).to_ascii_lowercase());
        // (criteria count, regex?, priority, matched length, -created_at) → higher wins.
        let mut best: Option<(usize, i64, usize, f64, &CompiledRoute, usize)> = None;
        for route in &self.routes {
            let mut criteria = 0;
            if !route.methods.is_empty() {
                if !route.methods.iter().any(|m| m == method) {
                    continue;
                }
                criteria += 1;
            }
            if !route.hosts.is_empty() {
                let Some(h) = host.as_deref() else { continue };
                if !route.hosts.iter().any(|pattern| host_matches(pattern, h)) {
                    continue;
                }
                criteria += 1;
            }
            if !route.headers.is_empty() {
                let ok = route.headers.iter().all(|(name, values)| {
                    header(name).is_some_and(|v| values.contains(&v.to_ascii_lowercase()))
                });
                if !ok {
                    continue;
                }
                criteria += 1;
            }
            let mut matched_len = 0;
            let mut regex_priority = 0;
            if !route.paths.is_empty() {
                let mut found = None;
                for rule in &route.paths {
                    match rule {
                        PathRule::Prefix(p) if path.starts_with(p.as_str()) => {
                            found = Some(found.map_or(p.len(), |l: usize| l.max(p.len())));
                        }
                        PathRule::Regex(re) => {
                            if let Some(m) = re.find(path) {
                                found = Some(found.map_or(m.end(), |l: usize| l.max(m.end())));
                                regex_priority = route.regex_priority;
                            }
                        }
                        PathRule::Prefix(_) => {}
                    }
                }
                let Some(len) = found else { continue };
                matched_len = len;
                criteria += 1;
            }
            let candidate = (
                criteria,
                regex_priority,
                matched_len,
                -route.created_at,
                route,
                matched_len,
            );
            let better = match &best {
                None => true,
                Some(b) => (candidate.0, candidate.1, candidate.2)
                    .cmp(&(b.0, b.1, b.2))
                    .then_with(|| candidate.3.total_cmp(&b.3))
                    .then_with(|| b.4.id.cmp(&candidate.4.id))
                    .is_gt(),
            };
            if better {
                best = Some(candidate);
            }
        }
        let (_, _, _, _, route, prefix) = best?;
        let service = self
            .config
            .services
            .get(route.service_id.as_deref()?)?
            .clone();
        if service["enabled"].as_bool() == Some(false) {
            return None;
        }
        Some(Matched {
            service,
            matched_prefix: prefix,
            strip_path: route.strip_path,
            preserve_host: route.preserve_host,
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h.trim_start_matches('['));
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}"));
    }
    if let Some(prefix) = pattern.strip_suffix(".*") {
        return host.starts_with(&format!("{prefix}."));
    }
    pattern == host
}
