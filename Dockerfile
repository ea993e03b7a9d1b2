# syntax=docker/dockerfile:1

# Build a static binary.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/strait ./cmd/strait \
	&& mkdir -p /out/data

# Run it as a non-root user (uid 65532) on a minimal image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strait /strait
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 9092 9644
VOLUME /data
ENTRYPOINT ["/strait"]
CMD ["dev", "--listen", "0.0.0.0:9092", "--admin", "0.0.0.0:9644", "--data-dir", "/data"]
