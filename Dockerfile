# Multi-stage build: a Swift toolchain image compiles Tessera; a slim Debian image with libsodium runs it.
FROM swift:6.2-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsodium-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
RUN swift build -c release --product tessera --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/tessera" /out/tessera

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsodium23 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tessera
COPY --from=build /out/tessera /usr/local/bin/tessera
COPY migrations /app/migrations
COPY public /app/public
WORKDIR /app
ENV HOST=0.0.0.0 \
    PORT=3000 \
    MIGRATIONS_DIR=/app/migrations \
    PUBLIC_DIR=/app/public
USER tessera
EXPOSE 3000
ENTRYPOINT ["tessera"]
CMD ["serve", "--migrate"]
