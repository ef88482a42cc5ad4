//! ITMS 7.5 → 7.6 domain facts that both drivers share (ITMS.md): server roles, the
//! required source version, product lists, version comparison and policy-name classification.
//!
//! Keeping these in one place means the lab and the windows driver judge the same
//! way, so a rehearsal verdict means the same thing as a real one.

use std::cmp::Ordering;

/// What a server is in the ITMS estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A Notification Server (SMP server).
    Ns,
    /// A SQL Server host holding a CMDB.
    Sql,
    /// A site server (package, task, PXE services).
    Site,
    /// An internet gateway (CEM).
    Gateway,
}

impl Role {
    /// The name used in inventories.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ns => "ns",
            Role::Sql => "sql",
            Role::Site => "site",
            Role::Gateway => "gateway",
        }
    }

    /// A human name for messages ("an NS", "a sql server").
    pub fn describe(self) -> &'static str {
        match self {
            Role::Ns => "an NS",
            Role::Sql => "a sql server",
            Role::Site => "a site server",
            Role::Gateway => "an internet gateway",
        }
    }

    /// The ITMS role called `s`, if it is one.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ns" => Some(Role::Ns),
            "sql" => Some(Role::Sql),
            "site" => Some(Role::Site),
            "gateway" => Some(Role::Gateway),
            _ => None,
        }
    }
}

/// The only version an on-box upgrade or an off-box migration may start from.
pub(crate) const REQUIRED_SOURCE: &str = "7.5 SP1 HF5";

/// The version the shipped runbooks upgrade to.
pub(crate) const TARGET: &str = "7.6";

/// The database name of the CMDB.
pub(crate) const CMDB: &str = "Symantec_CMDB";

/// Free space (GB) below which the lab refuses an upgrade. The vendor guide gives no
/// number (SIM's readiness check decides on real servers); this is the lab's own line.
pub(crate) const LAB_MIN_FREE_GB: f64 = 10.0;

/// .NET Framework 4.5.1 `Release` value (the lowest, on Windows 8.1 / Server 2012 R2).
pub(crate) const DOTNET_451_RELEASE: u64 = 378675;

/// Solutions that have no 7.6 release and are uninstalled by the upgrade.
pub(crate) const WITHOUT_76_RELEASE: &[&str] = &["Mobile Management Solution"];

/// Products no longer bundled with ITMS 7.6.
pub(crate) const NO_LONGER_BUNDLED: &[&str] = &["Out of Band Management Component"];

/// Products whose data must be copied by hand after an off-box migration.
pub(crate) const MANUAL_MIGRATION: &[&str] = &[
    "Inventory Solution",
    "Software Management Solution",
    "Barcode Solution",
    "Real-Time System Management",
    "Real-Time Console Infrastructure",
];

/// SQL `LIKE` patterns that select agent and plug-in install/upgrade policies by name.
pub(crate) const DEFAULT_POLICY_PATTERNS: &[&str] = &[
    "%Agent% - Install",
    "%Agent% - Upgrade",
    "%Plug-in% - Install",
    "%Plug-in% - Upgrade",
];

/// The release ("7.5", "7.6") of a version name such as "7.5 SP1 HF5" or a build
/// such as "7.6.1383.0".
pub(crate) fn release(version: &str) -> String {
    let head = version.split_whitespace().next().unwrap_or("");
    let mut parts = head.split('.');
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => format!("{a}.{b}"),
        _ => head.to_string(),
    }
}

/// True when `version` belongs to the 7.5 release (any service pack or hotfix).
pub(crate) fn is_75(version: &str) -> bool {
    release(version) == "7.5"
}

/// Compare dotted versions numerically ("7.10" > "7.9"); non-numeric parts compare as text.
///
/// ITMS.md: agent versions must be compared numerically, never as strings.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> {
        s.trim()
            .split(|c: char| c == '.' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (split(a), split(b));
    for i in 0..pa.len().max(pb.len()) {
        let x = pa.get(i).map(String::as_str).unwrap_or("0");
        let y = pb.get(i).map(String::as_str).unwrap_or("0");
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// The leading dotted number of a file version such as "7.5.3153.0 (built by: x)".
pub(crate) fn leading_version(text: &str) -> Option<String> {
    let v: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.').to_string();
    (!v.is_empty() && v.contains('.')).then_some(v)
}

/// Products in `installed` whose name contains one of `names` (case-insensitive).
pub(crate) fn matching(installed: &[String], names: &[&str]) -> Vec<String> {
    installed
        .iter()
        .filter(|p| {
            let lp = p.to_lowercase();
            names.iter().any(|n| lp.contains(&n.to_lowercase()))
        })
        .cloned()
        .collect()
}

/// The product verdicts shared by both drivers' `installed_products` results.
pub(crate) fn classify_products(products: &[String]) -> serde_json::Value {
    serde_json::json!({
        "products": products,
        "without_76_release": matching(products, WITHOUT_76_RELEASE),
        "no_longer_bundled": matching(products, NO_LONGER_BUNDLED),
        "needs_simultaneous_upgrade": matching(products, &["ServiceDesk"]),
        "manual_migration": matching(products, MANUAL_MIGRATION),
    })
}

/// What a policy name says about the policy: `(kind, action, audience)`.
///
/// kind is `agent` | `plugin` | `other`; action `install` | `upgrade` | `other`;
/// audience `site_servers` | `clients`. Derived from the name because that is the only
/// attribute both drivers can read the same way.
pub(crate) fn classify_policy(name: &str) -> (&'static str, &'static str, &'static str) {
    let n = name.to_lowercase();
    let kind = if n.contains("plug-in") || n.contains("plugin") {
        "plugin"
    } else if n.contains("agent") {
        "agent"
    } else {
        "other"
    };
    let action = if n.contains("upgrade") {
        "upgrade"
    } else if n.contains("install") {
        "install"
    } else {
        "other"
    };
    let audience = if n.contains("site server") {
        "site_servers"
    } else {
        "clients"
    };
    (kind, action, audience)
}

/// SQL Server `LIKE` matching with `%` and `_`, case-insensitive (the CMDB's
/// default collation is case-insensitive), so the lab selects what SQL would.
pub(crate) fn sql_like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Classic two-pointer wildcard match with backtracking on the last `%`.
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_of_names_and_builds() {
        assert_eq!(release("7.5 SP1 HF5"), "7.5");
        assert_eq!(release("7.6"), "7.6");
        assert_eq!(release("7.6.1383.0"), "7.6");
        assert!(is_75("7.5 SP1 HF3"));
        assert!(!is_75("7.6"));
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        assert_eq!(compare_versions("7.10", "7.9"), Ordering::Greater);
        assert_eq!(compare_versions("7.6.1383", "7.6.1383.0"), Ordering::Equal);
        assert_eq!(compare_versions("7.5.3153.7400", "7.6"), Ordering::Less);
    }

    #[test]
    fn leading_version_ignores_build_notes() {
        assert_eq!(
            leading_version("7.5.3153.0 (built by: TFS)").as_deref(),
            Some("7.5.3153.0")
        );
        assert_eq!(leading_version("unknown"), None);
    }

    #[test]
    fn like_patterns_behave_like_sql_server() {
        assert!(sql_like(
            "Symantec Management Agent for Windows - Upgrade",
            "%Agent% - Upgrade"
        ));
        assert!(sql_like(
            "inventory PLUG-IN for windows - install",
            "%Plug-in% - Install"
        ));
        assert!(!sql_like(
            "Windows System Assessment Scan",
            "%Agent% - Install"
        ));
        assert!(sql_like("abc", "a_c"));
        assert!(!sql_like("abcd", "a_c"));
        assert!(sql_like("", "%"));
    }

    #[test]
    fn policy_names_are_classified() {
        assert_eq!(
            classify_policy("Package Service Plug-in for Site Servers - Upgrade"),
            ("plugin", "upgrade", "site_servers")
        );
        assert_eq!(
            classify_policy("Symantec Management Agent for Windows - Install"),
            ("agent", "install", "clients")
        );
    }

    #[test]
    fn products_without_a_76_release_are_reported() {
        let v = classify_products(&[
            "Mobile Management Solution".to_string(),
            "Inventory Solution".to_string(),
        ]);
        assert_eq!(v["without_76_release"][0], "Mobile Management Solution");
        assert_eq!(v["manual_migration"][0], "Inventory Solution");
    }
}
