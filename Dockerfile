# syntax=docker/dockerfile:1
# clipgate: multi-stage build. The runtime image holds the binary, CA certificates and the bundled
# fixture model (a few MB), so `docker run` works without any download.
#   docker build -t clipgate .
#   docker run -p 8080:8080 clipgate                        # embedded Weaviate double, fixture model
#   docker run -p 8080:8080 -e WEAVIATE_URL=http://weaviate:8080 clipgate
#   docker run -p 8080:8080 -v /models/clip:/models/clip:ro -e CLIP_MODEL_DIR=/models/clip clipgate

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway --bin clipgate \
 && cp target/release/clipgate /usr/local/bin/clipgate \
 && strip /usr/local/bin/clipgate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/clipgate /usr/local/bin/clipgate
COPY fixtures/model /opt/clipgate/fixtures/model
ENV CLIPGATE_LISTEN=0.0.0.0:8080 \
    CLIPGATE_GRPC_LISTEN=0.0.0.0:50051 \
    CLIP_MODEL_DIR=/opt/clipgate/fixtures/model \
    RUST_LOG=info
WORKDIR /opt/clipgate
EXPOSE 8080 50051
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/clipgate"]
CMD ["serve"]
