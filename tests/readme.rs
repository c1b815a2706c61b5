//! The README's compatibility table lists every function of the C API
//! contract, and only real ones.

use std::collections::BTreeSet;

fn contract_functions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/NOPOLL-API.md"))
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` | `").map(|(name, _)| name.to_string()))
        .filter(|n| {
            let bare = n.trim_start_matches('_');
            bare.starts_with("nopoll_")
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .filter(|n| n != "nopoll_bool" && n != "nopoll_is_disconnected")
        .collect()
}

#[test]
fn compatibility_table_covers_the_contract() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, rest) = readme
        .split_once("<!-- compat:begin -->")
        .expect("table start marker");
    let (table, _) = rest
        .split_once("<!-- compat:end -->")
        .expect("table end marker");
    let listed: BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(n, _)| n.to_string()))
        .collect();
    let contract = contract_functions();
    assert!(contract.len() > 150, "contract parsed: {}", contract.len());
    let missing: Vec<_> = contract.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&contract).collect();
    assert!(
        missing.is_empty(),
        "README table misses {missing:?}: run python3 docs/compat.py"
    );
    assert!(
        extra.is_empty(),
        "README table lists unknown functions {extra:?}"
    );
}
