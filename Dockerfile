# syntax=docker/dockerfile:1
# gwanmun and the sample services, built in one stage, shipped in two small
# non-root images (distroless: glibc and CA certificates, no shell):
#   docker build -t gwanmun:0.1.0 .                              # the gateway (last stage)
#   docker build --target demo -t gwanmun-demo:0.1.0 .           # the sample services
# See docs/demo.md. (No container engine was available where this was
# written: the file is checked by review only, not by a build.)

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds; the binaries
# are copied out because the cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gwanmun -p gwanmun-demo --bins \
    && mkdir -p /out \
    && cp target/release/gwanmun target/release/gwanmun-demo /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS demo
COPY --from=build /out/gwanmun-demo /usr/local/bin/gwanmun-demo
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gwanmun-demo"]
CMD ["service", "task", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]

FROM gcr.io/distroless/cc-debian12:nonroot AS gwanmun
COPY --from=build /out/gwanmun /usr/local/bin/gwanmun
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gwanmun"]
# Mount the config there (deploy/kubernetes/gateway.yaml uses a ConfigMap).
CMD ["run", "-c", "/etc/gwanmun/gwanmun.yaml"]
