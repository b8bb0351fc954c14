# syntax=docker/dockerfile:1
# Two images from one context, each on distroless glibc (aws-lc needs libc), as user
# 65532:
#
#   docker build -t REGISTRY/digicert-operator:0.1.0 .                    (the operator)
#   docker build --target simulator -t REGISTRY/certcentral-sim:0.1.0 .   (the simulator)
#
# The operator's image holds the operator's binary only (operator, CRD printer, kubectl
# plugin); the CertCentral simulator, a test CA, is a program and an image of its own.
# Each image has its own build stage, so building one never compiles the other; the
# cache mounts are shared, so the dependencies compile once.
#
# CARGO_PROFILE is the cargo profile: `--build-arg CARGO_PROFILE=dev` builds a debug
# binary in a fraction of the time (crates/digicert-operator/tests/components/image.rs builds the stages so).

FROM rust:1-bookworm AS build-simulator
ARG CARGO_PROFILE=release
WORKDIR /src
# The whole context: .dockerignore admits only what the build reads.
COPY . ./
# Paths are relative to WORKDIR. target/ is a cache mount, gone after this step: the
# binary is copied out of it into out/, which stays in the stage.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "$CARGO_PROFILE" --locked --package certcentral-sim --bin certcentral-sim \
    && case "$CARGO_PROFILE" in dev | test) dir=debug ;; bench) dir=release ;; *) dir=$CARGO_PROFILE ;; esac \
    && install -D -m 0755 "target/$dir/certcentral-sim" out/certcentral-sim

FROM gcr.io/distroless/cc-debian12:nonroot AS simulator
COPY --from=build-simulator /src/out/certcentral-sim /usr/local/bin/certcentral-sim
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/certcentral-sim"]

FROM rust:1-bookworm AS build-operator
ARG CARGO_PROFILE=release
WORKDIR /src
COPY . ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "$CARGO_PROFILE" --locked --package digicert-operator --bin digicert-operator \
    && case "$CARGO_PROFILE" in dev | test) dir=debug ;; bench) dir=release ;; *) dir=$CARGO_PROFILE ;; esac \
    && install -D -m 0755 "target/$dir/digicert-operator" out/digicert-operator

# The last stage is the default target: `docker build .` builds the operator.
FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build-operator /src/out/digicert-operator /usr/local/bin/digicert-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/digicert-operator"]
CMD ["run"]
