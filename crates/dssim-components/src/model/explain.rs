//! `dssim explain`: every parameter of every component, nested tables included, with a
//! type in words, its allowed values, its default and its meaning, generated at build time
//! from the configuration structs themselves (see `build.rs`), so the reference cannot
//! drift from what the loader accepts. A unit test walks every field serde accepts and
//! finds it here, in words with no Rust syntax.

include!(concat!(env!("OUT_DIR"), "/config_docs.rs"));

/// One documented parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Path as users write it (`clients.rate`, `clients.retries.max`).
    pub path: String,
    /// What kind of value it takes, in words (`duration`, `list of tables`, `one of`).
    pub kind: String,
    /// The values it accepts, with examples and units (`primary | replicas |
    /// read_your_writes(5s)`); empty where `kind` says it all.
    pub values: String,
    /// Its default, or "required".
    pub default: String,
    /// What it means (with its unit).
    pub doc: String,
}

/// The types users write as text with a grammar of their own: (module, type, kind, values,
/// default when the type's own default applies).
const LEAVES: &[Leaf] = &[
    ("", "String", "text", "", "empty"),
    ("", "f64", "number", "", "0"),
    ("", "u32", "whole number", "0, 1, 2, …", "0"),
    ("", "u64", "whole number", "0, 1, 2, …", "0"),
    ("", "usize", "whole number", "0, 1, 2, …", "0"),
    ("", "bool", "true or false", "true | false", "false"),
    (
        "units",
        "Dur",
        "duration",
        "a number and a unit: ns, us, ms, s, m, h (\"250us\", \"5ms\", \"2s\", \"10m\", \"24h\")",
        "0s",
    ),
    (
        "units",
        "DistSpec",
        "distribution",
        "\"const(5ms)\", \"exp(5ms)\" (mean), \"uniform(1ms, 9ms)\", \"normal(10ms, 2ms)\", \
         \"lognormal(10ms, 5ms)\" (mean, sd), \"erlang(3, 6ms)\" (k, mean), \"pareto(2ms, 1.5)\" \
         (scale, shape), \"hyperexp(0.9, 1ms, 10ms)\" (p, mean1, mean2); a bare duration is const",
        "",
    ),
    (
        "units",
        "Bytes",
        "size",
        "a number and a unit: B, KB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB (of 1024): \
         \"2KB\", \"512MiB\", \"8GiB\"",
        "",
    ),
    (
        "units",
        "Bandwidth",
        "bandwidth",
        "a number and a unit in bits per second: bps, Kbps, Mbps, Gbps, Tbps (\"1Gbps\", \"100Mbps\")",
        "",
    ),
    (
        "traffic::popularity",
        "Popularity",
        "key popularity",
        "uniform | zipf(a) (\"zipf(0.99)\") | hotspot(f, p) (\"hotspot(0.01, 0.5)\": share p of \
         requests on the first f of the keys)",
        "uniform",
    ),
    (
        "compute::shedding",
        "Shedding",
        "one of",
        "none | queue | deadline(d) (\"deadline(500ms)\") | probabilistic(f) (\"probabilistic(0.8)\", \
         f in [0, 1))",
        "queue",
    ),
    (
        "data::database",
        "ReadFrom",
        "one of",
        "primary | replicas | read_your_writes(w) (\"read_your_writes(5s)\")",
        "primary",
    ),
    (
        "compute::autoscaler",
        "Target",
        "number, or a duration for p95",
        "0.7 (cpu: utilization), 500 (rps per instance), \"200ms\" (p95), 10 (queue per worker)",
        "",
    ),
    (
        "compute::autoscaler",
        "Step",
        "share or count",
        "a share of the current count such as \"50%\", or a count such as 2",
        "",
    ),
    (
        "data::cache",
        "Warm",
        "\"hottest\" or a count",
        "\"hottest\" (as many of the hottest keys as fit) or a number of entries such as 5000",
        "",
    ),
];

/// A row of [`LEAVES`].
type Leaf = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);
/// A row of `CONFIG_ENUMS`.
type EnumRow = (&'static str, &'static str, &'static str, &'static str);

/// What a Rust type is, for a user.
enum Shape {
    /// A grammar of its own, from [`LEAVES`].
    Leaf(&'static Leaf),
    /// An enum: its variants.
    Enum(&'static EnumRow),
    /// A table of keys (a config struct): its module and name.
    Table(&'static str, &'static str),
}

/// A resolved type: the shape of its innermost element and how it is wrapped.
struct Ty {
    shape: Shape,
    optional: bool,
    /// Lists around it (`Vec<Vec<String>>`: 2).
    lists: usize,
    /// `BTreeMap<String, T>`: a table of names to values.
    map: bool,
}

/// The last segment of a path (`crate::units::Bytes` -> `Bytes`).
fn last_segment(t: &str) -> &str {
    t.rsplit("::").next().unwrap_or(t).trim()
}

/// Resolves a type as written in module `module`: its own module's definitions first,
/// then anywhere in the crate.
fn resolve(module: &str, ty: &str) -> Option<Ty> {
    let mut t = ty.trim();
    let mut optional = false;
    let mut lists = 0;
    let mut map = false;
    loop {
        if let Some(rest) = t.strip_prefix("Option<") {
            optional = true;
            t = rest.strip_suffix('>')?;
        } else if let Some(rest) = t.strip_prefix("Vec<") {
            lists += 1;
            t = rest.strip_suffix('>')?;
        } else if let Some(rest) = t.strip_prefix("BTreeMap<String,") {
            map = true;
            t = rest.strip_suffix('>')?.trim();
        } else {
            break;
        }
    }
    let name = last_segment(t);
    let shape = find_shape(module, name)?;
    Some(Ty {
        shape,
        optional,
        lists,
        map,
    })
}

fn find_shape(module: &str, name: &str) -> Option<Shape> {
    let leaf = |m: Option<&str>| {
        LEAVES
            .iter()
            .find(|l| l.1 == name && m.is_none_or(|m| l.0 == m || l.0.is_empty()))
    };
    let table = |m: Option<&str>| {
        CONFIG_FIELDS
            .iter()
            .find(|r| r.1 == name && m.is_none_or(|m| r.0 == m))
            .map(|r| Shape::Table(r.0, r.1))
    };
    let en = |m: Option<&str>| {
        CONFIG_ENUMS
            .iter()
            .find(|e| e.1 == name && m.is_none_or(|m| e.0 == m))
            .map(Shape::Enum)
    };
    // Same module first (client::Step is a table, autoscaler::Step a share or count).
    leaf(Some(module))
        .map(Shape::Leaf)
        .or_else(|| table(Some(module)))
        .or_else(|| en(Some(module)))
        .or_else(|| leaf(None).map(Shape::Leaf))
        .or_else(|| table(None))
        .or_else(|| en(None))
}

fn describe(ty: &Ty) -> (String, String) {
    let (base, values) = match &ty.shape {
        Shape::Leaf(l) => (l.2.to_string(), l.3.to_string()),
        Shape::Enum(e) => ("one of".to_string(), e.2.to_string()),
        Shape::Table(..) => ("table".to_string(), String::new()),
    };
    let mut kind = base;
    for _ in 0..ty.lists {
        kind = if kind == "table" {
            "list of tables".to_string()
        } else if let Some(rest) = kind.strip_prefix("list of ") {
            format!("list of lists of {rest}")
        } else if kind == "one of" {
            "list of values, each one of".to_string()
        } else {
            format!("list of {kind}")
        };
    }
    if ty.map {
        kind = format!("table of names to {kind}");
    }
    if kind == "list of lists of text" {
        kind = "list of lists of names".to_string();
    }
    (kind, values)
}

/// A Rust default expression in words: `Dur(SimTime::from_secs(60))` -> `60s`,
/// `vec![0.05, 0.25]` -> `[0.05, 0.25]`, `Step::Percent(100.0)` -> `100%`, a struct literal
/// -> `{ key = value, ... }`. Anything it does not know is returned as is (and the unit
/// test fails).
fn humanize(e: &str) -> String {
    let e = e.trim().trim_end_matches(',').trim();
    if let Some(inner) = e.strip_prefix("Some(").and_then(|r| r.strip_suffix(')')) {
        return humanize(inner);
    }
    if let Some(inner) = e.strip_prefix("Dur(").and_then(|r| r.strip_suffix(')')) {
        return humanize(inner);
    }
    if e == "SimTime::ZERO" || e == "Dur::default()" {
        return "0s".into();
    }
    for (f, unit) in [
        ("SimTime::from_secs(", "s"),
        ("SimTime::from_millis(", "ms"),
        ("SimTime::from_micros(", "us"),
        ("SimTime::from_nanos(", "ns"),
    ] {
        if let Some(n) = e.strip_prefix(f).and_then(|r| r.strip_suffix(')')) {
            return format!("{}{unit}", n.replace('_', ""));
        }
    }
    if let Some(n) = e
        .strip_prefix("Step::Percent(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return format!("{}%", n.trim_end_matches(".0"));
    }
    if let Some(n) = e
        .strip_prefix("Step::Count(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return n.to_string();
    }
    if let Some(items) = e.strip_prefix("vec![").and_then(|r| r.strip_suffix(']')) {
        let parts: Vec<String> = split_top(items).iter().map(|p| humanize(p)).collect();
        return format!("[{}]", parts.join(", "));
    }
    if let Some(s) = e
        .strip_suffix(".to_string()")
        .or_else(|| e.strip_suffix(".into()"))
    {
        return humanize(s);
    }
    if e.len() >= 2 && e.starts_with('"') && e.ends_with('"') {
        return e[1..e.len() - 1].to_string();
    }
    // A struct literal: `Name { a: x, b: y }`.
    if let Some(open) = e.find('{') {
        let head = e[..open].trim();
        if !head.is_empty()
            && head.chars().all(|c| c.is_alphanumeric() || c == '_')
            && e.ends_with('}')
        {
            let body = &e[open + 1..e.len() - 1];
            let parts: Vec<String> = split_top(body)
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| match p.split_once(':') {
                    Some((k, v)) => format!("{} = {}", k.trim(), humanize(v)),
                    None => humanize(p),
                })
                .collect();
            return format!("{{ {} }}", parts.join(", "));
        }
    }
    // A number with a type suffix (`1_u32`, `2.0f64`).
    let n = e.replace('_', "");
    for suffix in ["u32", "u64", "usize", "f64"] {
        if let Some(num) = n.strip_suffix(suffix) {
            if num.parse::<f64>().is_ok() {
                return num.to_string();
            }
        }
    }
    e.to_string()
}

/// Splits on the commas that are not inside brackets.
fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter().map(|p| p.trim().to_string()).collect()
}

fn default_text(raw: &str, ty: &Ty) -> String {
    match raw {
        "required" => "required".into(),
        "default" => {
            if ty.optional {
                "none".into()
            } else if ty.lists > 0 || ty.map {
                "empty".into()
            } else {
                match &ty.shape {
                    Shape::Leaf(l) => l.4.to_string(),
                    Shape::Enum(e) => e.3.to_string(),
                    Shape::Table(..) => "each key's default".into(),
                }
            }
        }
        other => humanize(other),
    }
}

/// `required`: how a required key of this table reads ("required", "required in each
/// entry" for a list of tables, "required when `retries` is given" for an optional one).
fn walk(
    prefix: &str,
    module: &str,
    strukt: &str,
    required: &str,
    out: &mut Vec<Param>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    for (_, _, field, fty, default_raw, doc) in CONFIG_FIELDS
        .iter()
        .filter(|r| r.0 == module && r.1 == strukt)
    {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        let Some(ty) = resolve(module, fty) else {
            // Unknown to the table: shown as written, so the unit test names it.
            out.push(Param {
                path,
                kind: fty.to_string(),
                values: String::new(),
                default: default_raw.to_string(),
                doc: doc.to_string(),
            });
            continue;
        };
        let (kind, mut values) = describe(&ty);
        if let Shape::Enum(e) = &ty.shape {
            // Each value with its meaning.
            let meanings: Vec<String> = CONFIG_VARIANTS
                .iter()
                .filter(|v| v.0 == e.0 && v.1 == e.1 && !v.3.is_empty())
                .map(|v| format!("{}: {}", v.2, v.3.trim_end_matches('.')))
                .collect();
            if !meanings.is_empty() {
                values = format!("{values}\n{}", meanings.join("\n"));
            }
        }
        let mut default = default_text(default_raw, &ty);
        if default == "required" {
            default = required.to_string();
        }
        out.push(Param {
            path: path.clone(),
            kind,
            values,
            default,
            doc: doc.to_string(),
        });
        if let Shape::Table(m, s) = ty.shape {
            let inner = if ty.lists > 0 {
                "required in each entry".to_string()
            } else if ty.optional || *default_raw != "required" {
                format!("required when `{field}` is given")
            } else {
                "required".to_string()
            };
            walk(&path, m, s, &inner, out, depth + 1);
        }
    }
}

/// Every parameter of the model file, or only those under `section` (`clients`,
/// `services`, `caches.capacity`, ...; `None` for all).
pub fn params(section: Option<&str>) -> Vec<Param> {
    let mut out = Vec::new();
    walk("", "model", "ModelConfig", "required", &mut out, 0);
    match section {
        Some(s) => out
            .into_iter()
            .filter(|p| p.path == s || p.path.starts_with(&format!("{s}.")))
            .collect(),
        None => out,
    }
}

/// The top-level sections of a model file.
pub fn sections() -> Vec<&'static str> {
    CONFIG_FIELDS
        .iter()
        .filter(|r| r.0 == "model" && r.1 == "ModelConfig")
        .map(|r| r.2)
        .collect()
}

/// Rust syntax that must never reach a user: a test checks every entry against it.
pub const RUST_WORDS: &[&str] = &[
    "crate::",
    "::",
    "Vec<",
    "Option<",
    "BTreeMap",
    "HashMap",
    "Dur(",
    "vec![",
    "SimTime",
    "String",
    "f64",
    "u32",
    "u64",
    "usize",
    "Some(",
    "default()",
    "(…)",
    "=>",
];

/// The first piece of Rust syntax in `text`, if any: one of [`RUST_WORDS`], or a type name
/// such as `ServiceConfig`.
pub fn rust_in(text: &str) -> Option<String> {
    if let Some(w) = RUST_WORDS.iter().find(|w| {
        if w.chars().all(|c| c.is_alphanumeric()) {
            text.split(|c: char| !c.is_alphanumeric()).any(|t| t == **w)
        } else {
            text.contains(**w)
        }
    }) {
        return Some(w.to_string());
    }
    text.split(|c: char| !c.is_alphanumeric())
        .find(|t| t.len() > 6 && t.ends_with("Config") && t.starts_with(char::is_uppercase))
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// The fields serde accepts in a table, read from its "unknown field" error.
    fn accepted<T: DeserializeOwned>() -> Vec<String> {
        use serde::de::value::{Error, MapDeserializer};
        let m = MapDeserializer::<_, Error>::new(std::iter::once(("__no_such_field__", 1u8)));
        let e = T::deserialize(m).err().expect("unknown field").to_string();
        assert!(e.contains("unknown field"), "{e}");
        e.split('`').skip(3).step_by(2).map(String::from).collect()
    }

    #[test]
    fn every_field_serde_accepts_is_documented_in_words() {
        use crate::{autoscaler, cache, canary, client, database, faults, jobs};
        use crate::{load_balancer as lb, model, service, shedding};
        // Every table the loader reads, at the path users write it, by its own serde
        // implementation: a new field anywhere must show up in `explain`.
        let tables: Vec<(&str, Vec<String>)> = vec![
            ("", accepted::<model::ModelConfig>()),
            ("clients", accepted::<client::ClientConfig>()),
            ("clients.steps", accepted::<client::Step>()),
            ("clients.retries", accepted::<client::RetryConfig>()),
            (
                "clients.browser_cache",
                accepted::<cache::BrowserCacheConfig>(),
            ),
            ("load_balancers", accepted::<lb::LoadBalancerConfig>()),
            (
                "load_balancers.health_check",
                accepted::<lb::HealthCheckConfig>(),
            ),
            ("services", accepted::<service::ServiceConfig>()),
            ("services.pool", accepted::<service::PoolConfig>()),
            ("services.cost", accepted::<service::CostConfig>()),
            ("services.degrade", accepted::<shedding::DegradeLevel>()),
            ("services.canary", accepted::<canary::CanaryConfig>()),
            ("queues", accepted::<jobs::QueueConfig>()),
            ("queues.retries", accepted::<jobs::JobRetries>()),
            ("queues.priorities", accepted::<jobs::JobPriority>()),
            ("queues.subscribers", accepted::<jobs::Subscriber>()),
            ("services.calls", accepted::<crate::calls::CallConfig>()),
            (
                "circuit_breakers",
                accepted::<crate::circuit_breaker::CircuitBreakerConfig>(),
            ),
            ("geo_routers", accepted::<crate::geo::GeoRouterConfig>()),
            (
                "geo_routers.health_check",
                accepted::<lb::HealthCheckConfig>(),
            ),
            ("autoscalers", accepted::<autoscaler::AutoscalerConfig>()),
            (
                "autoscalers.scale_up",
                accepted::<autoscaler::ScalePolicy>(),
            ),
            (
                "autoscalers.scale_down",
                accepted::<autoscaler::ScalePolicy>(),
            ),
            ("databases", accepted::<database::DatabaseConfig>()),
            ("databases.failover", accepted::<database::Failover>()),
            ("databases.buffer_pool", accepted::<database::BufferPool>()),
            ("databases.contention", accepted::<database::Contention>()),
            ("databases.batch", accepted::<database::Batch>()),
            ("databases.tenants", accepted::<database::Tenants>()),
            ("databases.cross_shard", accepted::<database::CrossShard>()),
            ("caches", accepted::<cache::CacheConfig>()),
            ("faults", accepted::<faults::FaultConfig>()),
            ("changes", accepted::<crate::changes::ChangeConfig>()),
            ("changes.set", accepted::<crate::changes::Settings>()),
            ("network", accepted::<model::NetworkConfig>()),
            ("network.partitions", accepted::<model::PartitionConfig>()),
            (
                "load_balancers.outlier_ejection",
                accepted::<lb::OutlierConfig>(),
            ),
            (
                "services.feature",
                accepted::<crate::compute::feature::FeatureConfig>(),
            ),
            (
                "services.deploy",
                accepted::<crate::compute::deploy::DeployConfig>(),
            ),
        ];
        let all = params(None);
        let mut checked = 0;
        for (prefix, fields) in &tables {
            assert!(!fields.is_empty(), "{prefix}: no fields read");
            for f in fields {
                let path = if prefix.is_empty() {
                    f.clone()
                } else {
                    format!("{prefix}.{f}")
                };
                let p = all.iter().find(|p| p.path == path).unwrap_or_else(|| {
                    panic!("{path} is accepted by the loader but not explained")
                });
                for (what, text) in [
                    ("type", &p.kind),
                    ("values", &p.values),
                    ("default", &p.default),
                    ("doc", &p.doc),
                ] {
                    if let Some(w) = rust_in(text) {
                        panic!("{path}: its {what} shows Rust ({w:?}): {text:?}");
                    }
                }
                assert!(!p.kind.is_empty() && !p.default.is_empty(), "{path}: {p:?}");
                assert!(!p.doc.is_empty(), "{path} has no description");
                checked += 1;
            }
        }
        // And nothing is explained that the loader would refuse.
        for p in &all {
            let (prefix, field) = p.path.rsplit_once('.').unwrap_or(("", &p.path));
            let known = tables
                .iter()
                .any(|(t, fs)| *t == prefix && fs.iter().any(|f| f == field));
            assert!(known, "{} is explained but no table accepts it", p.path);
        }
        assert_eq!(checked, all.len());
        assert!(checked > 150, "only {checked} parameters");
    }

    #[test]
    fn explain_names_values_and_defaults() {
        let find = |path: &str| {
            params(None)
                .into_iter()
                .find(|p| p.path == path)
                .unwrap_or_else(|| panic!("{path} missing"))
        };
        let r = find("databases.read_from");
        assert_eq!(r.default, "primary");
        assert!(r.values.contains("read_your_writes(5s)"), "{r:?}");
        assert!(r.values.contains("replicas"));
        assert_eq!(find("caches.capacity").kind, "whole number");
        assert_eq!(find("clients.steps").kind, "list of tables");
        assert_eq!(find("clients.steps.at").kind, "duration");
        assert_eq!(find("load_balancers.weights").kind, "list of whole number");
        assert_eq!(find("services.canary.steps").default, "[0.05, 0.25, 1.0]");
        assert_eq!(find("services.canary.every").default, "60s");
        // Absent: the whole table's default; given without it: the key's own.
        assert_eq!(
            find("autoscalers.scale_down").default,
            "{ step = 100%, stabilize = 300s }"
        );
        assert_eq!(find("autoscalers.scale_down.stabilize").default, "0s");
        assert_eq!(
            find("autoscalers.scale_up").default,
            "{ step = 100%, stabilize = 0s }"
        );
        assert_eq!(find("services.shedding").default, "queue");
        assert_eq!(find("services.workers").default, "1");
        assert_eq!(
            find("services.service_time").default,
            "required in each entry"
        );
        assert_eq!(
            find("clients.retries.max").default,
            "required when `retries` is given"
        );
        assert_eq!(
            find("network.partitions.sides").kind,
            "list of lists of names"
        );
        assert!(find("services.memory").values.contains("GiB"));
        assert!(find("databases.buffer_pool.disk_read").kind == "distribution");
        assert!(sections().contains(&"caches"));
        assert!(!params(Some("caches")).is_empty());
    }
}
