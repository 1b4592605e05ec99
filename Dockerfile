# tcgw: build on Debian 12, run on the slim image with runtime libraries only.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libmicrohttpd-dev libcurl4-openssl-dev libssl-dev \
      libjansson-dev libsodium-dev libgnutls28-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY gateway ./gateway
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTCGW_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && strip build/tcgw

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcurl4 libssl3 libjansson4 libsodium23 libgnutls30 libhiredis0.14 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --uid 10001 tcgw \
 && mkdir -p /run/secrets/tcgw /var/lib/tcgw /etc/tcgw/policies \
 && chown tcgw /run/secrets/tcgw /var/lib/tcgw \
 && chmod 700 /run/secrets/tcgw /var/lib/tcgw
COPY --from=build /src/build/tcgw /usr/local/bin/tcgw
COPY specs /etc/tcgw/specs
# Mount the configuration, the master key, the credential store and the policies:
#   /etc/tcgw/tcgw.json   /run/secrets/tcgw/master.key   /var/lib/tcgw/credentials.store   /etc/tcgw/policies
VOLUME ["/etc/tcgw/policies", "/run/secrets/tcgw", "/var/lib/tcgw"]
USER tcgw
EXPOSE 8080 8443
HEALTHCHECK --interval=10s --timeout=2s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/tcgw"]
CMD ["serve", "--config", "/etc/tcgw/tcgw.json"]
