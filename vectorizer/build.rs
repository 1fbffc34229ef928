//! Builds `src/image/jpeg_shim.c`, the setjmp/longjmp error boundary around libjpeg-turbo's
//! decoder (see src/image/jpeg.rs), against the headers of the libjpeg that `mozjpeg-sys`
//! compiles from source (it exports them as `DEP_JPEG_INCLUDE`). Only a C compiler is needed.

fn main() {
    let shim = "src/image/jpeg_shim.c";
    println!("cargo:rerun-if-changed={shim}");
    println!("cargo:rerun-if-env-changed=DEP_JPEG_INCLUDE");
    let mut build = cc::Build::new();
    build.file(shim).warnings(true);
    if let Some(include) = std::env::var_os("DEP_JPEG_INCLUDE") {
        for dir in std::env::split_paths(&include) {
            build.include(dir);
        }
    }
    build.compile("clipgate_jpeg_shim");
}
