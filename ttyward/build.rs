//! Link options for the `ttyward` executable only.

fn main() {
    // Pack the ~30,000 relative relocations of this position-independent
    // executable (DT_RELR, glibc ≥ 2.36, lld or GNU ld ≥ 2.38): 700 KiB of
    // `.rela.dyn` that the loader reads at every start, and that stayed
    // resident, become about ten. Same protection (PIE, full RELRO).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // Fold identical functions (lld, the default linker of x86_64 Linux
    // since Rust 1.90): generic code instantiated for many types is often
    // byte-identical.
    println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
}
