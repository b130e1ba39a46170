//! Build-time configuration of the test suites from the environment: `real_kong` when
//! `KONG_ADMIN_URL` points the suites at a real Kong, so stand-in-only tests are compiled
//! as ignored, with their reason, instead of passing without running.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(real_kong)");
    println!("cargo::rerun-if-env-changed=KONG_ADMIN_URL");
    if std::env::var_os("KONG_ADMIN_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=real_kong");
    }
}
