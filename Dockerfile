# syntax=docker/dockerfile:1
# The digicert-operator image: the one binary (operator, CRD printer and simulator)
# on distroless glibc (aws-lc needs libc), as user 65532.
#
#   docker build -t digicert-operator:0.1.0 .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin digicert-operator \
    && install -D -m 0755 target/release/digicert-operator /out/digicert-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/digicert-operator /usr/local/bin/digicert-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/digicert-operator"]
CMD ["run"]
