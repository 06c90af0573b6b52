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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/agentg /usr/local/bin/agentg
# The nonroot user of the base image (65532) owns the data directory.
USER 65532:65532
VOLUME ["/data"]
EXPOSE 3128 15001
ENTRYPOINT ["/usr/local/bin/agentg"]
CMD ["serve", "--listen", "0.0.0.0:3128", "--data-dir", "/data"]
