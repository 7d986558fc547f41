# archie's image for those who build with a registry at hand:
#
#   docker build -t archie:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" .
#
# It builds the same release binary as scripts/build-image (meson --buildtype=release,
# -Dtests=false --unity=on -Dunity_size=6) on debian:bookworm-slim and runs it as UID 65532 on debian:bookworm-slim
# with only the runtime libraries and ca-certificates added. The entrypoint is the binary
# itself (exec form): no shell is involved at run time, though bookworm-slim still has one.
# scripts/build-image needs no registry at all and produces a smaller image without a
# shell or a package manager (see deploy/README.md, "The image"); prefer it when you can.

# ------------------------------------------------------------------ build stage
FROM debian:bookworm-slim AS build
# Boost must be 1.81 (libboost1.81-dev); the unversioned libboost-dev would bring 1.74.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ meson ninja-build pkg-config cmake binutils \
      libboost1.81-dev libboost-json1.81-dev \
      libnats-dev libssl-dev libpcre2-dev prometheus-cpp-dev libtomlplusplus-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src ./src
RUN meson setup /build --buildtype=release -Dtests=false --unity=on -Dunity_size=6 \
 && ninja -C /build src/archie \
 && strip --strip-unneeded -o /archie /build/src/archie \
 && /archie version

# ---------------------------------------------------------------- runtime stage
FROM debian:bookworm-slim
# Exactly what `ldd archie` needs, plus ca-certificates for TLS verification (its
# maintainer script creates /etc/ssl/certs, OpenSSL's default verify path).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libstdc++6 libgcc-s1 libssl3 libboost-json1.81.0 libnats3.4 libprotobuf-c1 \
      libpcre2-8-0 libprometheus-cpp-core1.0 libtomlplusplus3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
 && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group \
 && install -d -m 0700 -o 65532 -g 65532 /home/nonroot
COPY --from=build /archie /usr/local/bin/archie

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="archie" \
      org.opencontainers.image.description="Replicates object-storage buckets from MinIO bucket events in NATS JetStream" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

USER 65532:65532
EXPOSE 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/archie"]
CMD ["run", "--config", "/etc/archie/archie.toml"]
