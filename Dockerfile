# syntax=docker/dockerfile:1
# The digicert-operator image: the one binary (operator, CRD printer and simulator)
# on distroless glibc (aws-lc needs libc), as user 65532.
#
#   docker build -t REGISTRY/digicert-operator:0.1.0 .
#
# CARGO_PROFILE is the cargo profile: `--build-arg CARGO_PROFILE=dev` builds a debug
# binary in a fraction of the time (tests/image.rs builds the image's stage so).

FROM rust:1-bookworm AS build
ARG CARGO_PROFILE=release
WORKDIR /src
# The whole context: .dockerignore admits only what the build reads.
COPY . ./
# Paths are relative to WORKDIR. target/ is a cache mount, gone after this step: the
# binary is copied out of it into out/, which stays in the stage.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile "$CARGO_PROFILE" --locked --bin digicert-operator \
    && case "$CARGO_PROFILE" in dev | test) dir=debug ;; bench) dir=release ;; *) dir=$CARGO_PROFILE ;; esac \
    && install -D -m 0755 "target/$dir/digicert-operator" out/digicert-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/out/digicert-operator /usr/local/bin/digicert-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/digicert-operator"]
CMD ["run"]
