//! Build script of the test crate: turns the environment that points the suites at a real Kong
//! into `cfg`s, so that a test that cannot run there is compiled with `#[ignore = "reason"]`
//! and reported as ignored (never as passed). See `src/harness.rs` for the pattern.
//!
//! | variable set (non-empty) | cfg |
//! |---|---|
//! | `KONG_ADMIN_URL` | `real_kong` |
//! | `KONG_DBLESS_ADMIN_URL` | `real_dbless` |
//! | `KONG_NODE2_ADMIN_URL` | `real_node2` |
//! | `KONG_CP_ADMIN_URL` | `real_hybrid` |

/// Each variable and the cfg it turns on.
const SWITCHES: &[(&str, &str)] = &[
    ("KONG_ADMIN_URL", "real_kong"),
    ("KONG_DBLESS_ADMIN_URL", "real_dbless"),
    ("KONG_NODE2_ADMIN_URL", "real_node2"),
    ("KONG_CP_ADMIN_URL", "real_hybrid"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (var, cfg) in SWITCHES {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let set = std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
        if set {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
