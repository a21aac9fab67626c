# syntax=docker/dockerfile:1
# The reference service (`flightdeck serve`) as an image: dependencies are
# compiled in their own cached layer (cargo-chef), the build after it, and
# the runtime image holds one binary, run as a non-root user.
#
#   cargo xtask docker-build          # or: docker build -t flightdeck:dev .
#   docker run -p 8080:8080 -e FLIGHTDECK_ADMIN_TOKEN=... flightdeck:dev

ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

# The dependency graph alone, so the next stage's layer is reused until
# Cargo.toml or Cargo.lock change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS deps
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p flightdeck-cli

FROM deps AS build
COPY . .
RUN cargo build --release --locked -p flightdeck-cli \
    && install -m 0755 target/release/flightdeck /usr/local/bin/flightdeck

FROM debian:bookworm-slim AS runtime
# curl for the HEALTHCHECK; ca-certificates for OTLP over HTTPS.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flightdeck
COPY --from=build /usr/local/bin/flightdeck /usr/local/bin/flightdeck
USER 10001:10001
EXPOSE 8080
# Any address but loopback needs the admin token (FLIGHTDECK_ADMIN_TOKEN).
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["flightdeck", "serve", "--listen", "0.0.0.0:8080"]
