//! Records the target triple the sdk (and so the plugin) is compiled for, so the
//! metadata header can carry it and the host can refuse a plugin built for another target.
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=WEIR_SDK_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
