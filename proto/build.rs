//! Compiles the committed `.proto` subset with `protox` (a protobuf compiler in Rust), so building
//! clipgate needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "weaviate/v1/base.proto",
        "weaviate/v1/base_search.proto",
        "weaviate/v1/properties.proto",
        "weaviate/v1/search_get.proto",
        "weaviate/v1/aggregate.proto",
        "weaviate/v1/batch.proto",
        "weaviate/v1/weaviate.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
