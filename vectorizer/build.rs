//! Builds `src/image/jpeg_shim.c`, the setjmp/longjmp error boundary around libjpeg-turbo's
//! decoder (see src/image/jpeg.rs), against the headers of the libjpeg that `mozjpeg-sys`
//! compiles from source and links statically. Only a C compiler is needed.

fn main() {
    let shim = "src/image/jpeg_shim.c";
    println!("cargo:rerun-if-changed={shim}");
    println!("cargo:rerun-if-env-changed=DEP_JPEG_INCLUDE");
    // mozjpeg-sys (`links = "jpeg"`) exports its generated jconfig.h and its jpeglib.h here. They
    // must come first: a system libjpeg's headers would compile but describe another struct layout.
    let Some(include) = std::env::var_os("DEP_JPEG_INCLUDE") else {
        panic!("DEP_JPEG_INCLUDE is not set: mozjpeg-sys must be a dependency of this crate");
    };
    let mut build = cc::Build::new();
    build.file(shim).warnings(true);
    for dir in std::env::split_paths(&include) {
        build.include(dir);
    }
    build.compile("clipgate_jpeg_shim");
}
