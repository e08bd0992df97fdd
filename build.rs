//! Tells the tests whether a real ONNX Runtime library was named when they were built, so that
//! the engine-agreement test shows as "ignored" (with the reason) on a machine without one,
//! instead of passing while checking nothing. The product itself finds its library at run time.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(scalpmap_ort_named)");
    println!("cargo::rerun-if-env-changed=ORT_DYLIB_PATH");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| std::path::Path::new(&p).is_file()) {
        println!("cargo::rustc-cfg=scalpmap_ort_named");
    }
}
