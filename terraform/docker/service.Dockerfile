# One Cloud Run service of Autonomics (services/<SERVICE>), built from the
# repository root:
#   docker build -f terraform/docker/service.Dockerfile --build-arg SERVICE=query -t IMAGE .
# A static binary on a distroless base (CA certificates, time zones, a
# non-root user, nothing else).

ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
ARG SERVICE
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY functions ./functions
COPY services ./services
COPY shared ./shared
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/main.go" \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/service "./services/${SERVICE}"

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/service /service
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/service"]
