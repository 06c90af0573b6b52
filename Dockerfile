# agentg as a small image: a static binary on a distroless base, running as
# a non-root user, with its data directory (the interception CA, MCP state)
# as a volume. The Docker and Kubernetes examples in README.md use it.
#
#   docker build -t agentg .
#   docker run --rm -p 3128:3128 -v agentg-data:/data agentg
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/agentg ./cmd/agentg
# The data directory, made here because the distroless base has no shell:
# a named volume mounted on /data starts as a copy of it, owned by 65532
# and writable by no one else, as agentg requires of its data directory.
RUN mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/agentg /usr/local/bin/agentg
COPY --from=build --chown=65532:65532 /out/data /data
# The nonroot user of the base image (65532) owns the data directory.
USER 65532:65532
VOLUME ["/data"]
EXPOSE 3128 15001
# The admin API's probe needs no token; the image has no curl, so agentg
# asks it itself.
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/usr/local/bin/agentg", "healthcheck", "--ready"]
ENTRYPOINT ["/usr/local/bin/agentg"]
CMD ["serve", "--listen", "0.0.0.0:3128", "--data-dir", "/data"]
