# feed-api and feed-bot in one image; the compose file runs each as a service.
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      libsqlite3-dev libspdlog-dev libfmt-dev libcli11-dev librdkafka-dev libpq-dev libjemalloc-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY sql sql
COPY docs/openapi.yaml docs/openapi.yaml
COPY web web
COPY src src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFEED_BUILD_TESTS=OFF \
    && cmake --build build --target feed-api feed-bot

FROM debian:12
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-url1.81.0 libsqlite3-0 libspdlog1.10 libfmt9 librdkafka1 libpq5 libjemalloc2 curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/feed-api /src/build/feed-bot /usr/local/bin/
ENV FEED_HOST=0.0.0.0 PORT=8090 DATA_DIR=/data
VOLUME /data
EXPOSE 8090
HEALTHCHECK --interval=5s --timeout=2s CMD curl -fsS http://127.0.0.1:8090/api/ready || exit 1
CMD ["feed-api"]
