//! The built-in demo estate (`demo-lab`): what runbooks run against when no
//! `--inventory` is given, so anyone can rehearse the shipped runbooks at once.
//!
//! It is a healthy three-level hierarchy (`ns-hq` → `ns-emea` → `ns-emea-branch`, and
//! `ns-apac`) at 7.5 SP1 HF5 with matching collations and replication on.

use super::inventory::Inventory;

/// The demo estate's inventory text.
pub(crate) const DEMO_TOML: &str = include_str!("demo.toml");

/// The demo estate's inventory.
pub(crate) fn inventory() -> Inventory {
    // The text is fixed and a test parses it, so failure here is a build defect; still,
    // fall back to an empty-but-valid shape rather than panic.
    Inventory::parse(DEMO_TOML, "<demo>").unwrap_or_else(|e| Inventory {
        name: "demo-lab".into(),
        driver: Some(super::Driver::Lab),
        lab_delay: std::time::Duration::ZERO,
        servers: Vec::new(),
        origin: format!("<demo: invalid: {e}>"),
        notify: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_parses_and_is_a_three_level_hierarchy() {
        let inv = Inventory::parse(DEMO_TOML, "<demo>").unwrap();
        assert_eq!(inv.name, "demo-lab");
        assert_eq!(inv.driver, Some(super::super::Driver::Lab));
        assert_eq!(inv.depth("ns-emea-branch"), 2);
        let order = inv.bottom_up();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("ns-emea-branch") < pos("ns-emea"));
        assert!(pos("ns-emea") < pos("ns-hq"));
        assert!(pos("ns-apac") < pos("ns-hq"));
        assert_eq!(inventory().servers.len(), inv.servers.len());
    }
}
