#!/usr/bin/env python3
# Writes the initial seed corpora (fuzz/corpus/<target>/seed-*). Run once; kept so the seeds can
# be regenerated or extended. Crash inputs found later are added by hand as crash-*.
import gzip, io, json, os, tarfile, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

H = lambda c: "sha256:" + c * 64
OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
D2_M = "application/vnd.docker.distribution.manifest.v2+json"
D2_L = "application/vnd.docker.distribution.manifest.list.v2+json"
CFG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

def desc(mt, c, size, **kw):
    d = {"mediaType": mt, "digest": H(c), "size": size}
    d.update(kw)
    return d

# oci_manifest: first byte selects the Content-Type (index into the target's table).
oci_image = {"schemaVersion": 2, "mediaType": OCI_M, "config": desc(CFG, "c", 123),
             "layers": [desc(LAYER, "a", 1000), desc(LAYER, "b", 2000)],
             "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
oci_index = {"schemaVersion": 2, "mediaType": OCI_I, "manifests": [
    desc(OCI_M, "1", 500, platform={"os": "linux", "architecture": "amd64"}),
    desc(OCI_M, "2", 501, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    desc(OCI_M, "3", 502, platform={"os": "unknown", "architecture": "unknown"},
         annotations={"vnd.docker.reference.type": "attestation-manifest"})]}
docker_m = {"schemaVersion": 2, "mediaType": D2_M,
            "config": desc("application/vnd.docker.container.image.v1+json", "c", 1469),
            "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", "d", 2811)]}
docker_l = {"schemaVersion": 2, "mediaType": D2_L, "manifests": [
    desc(D2_M, "4", 528, platform={"os": "linux", "architecture": "amd64"})]}
artifact = {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": "application/vnd.example+type",
            "config": desc("application/vnd.oci.empty.v1+json", "4", 2),
            "layers": [desc("application/vnd.example.sbom+json", "5", 42)],
            "subject": desc(OCI_M, "6", 700)}
put("oci_manifest", "oci-image", b"\x01" + json.dumps(oci_image).encode())
put("oci_manifest", "oci-index", b"\x02" + json.dumps(oci_index).encode())
put("oci_manifest", "docker-v2", b"\x03" + json.dumps(docker_m).encode())
put("oci_manifest", "docker-list", b"\x04" + json.dumps(docker_l).encode())
put("oci_manifest", "artifact-no-ct", b"\x00" + json.dumps(artifact).encode())
put("oci_manifest", "schema1", b"\x05" + b'{"schemaVersion":1,"name":"a/b","tag":"v1","fsLayers":[]}')
put("oci_manifest", "digest", b"\x00" + H("e").encode())
put("oci_manifest", "repo-name", b"\x00web/app-1/x__y.z")
put("oci_manifest", "glob", b"\x00web/*\nweb/app")

# image_config: real-shaped image configs.
cfg = {"created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
       "config": {"User": "1000:1000", "ExposedPorts": {"8080/tcp": {}},
                  "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "NODE_VERSION=20.1.0"],
                  "Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["node", "server.js"],
                  "WorkingDir": "/app", "Labels": {"org.opencontainers.image.revision": "abc"},
                  "StopSignal": "SIGTERM",
                  "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                                  "Interval": 30000000000}},
       "rootfs": {"type": "layers", "diff_ids": [H("a"), H("b")]},
       "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file"}]}
put("image_config", "node", json.dumps(cfg))
put("image_config", "arm64", json.dumps({"architecture": "arm64", "variant": "v8", "os": "linux",
                                          "config": {"Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": []}}))
put("image_config", "minimal", "{}")
put("image_config", "nulls", json.dumps({"architecture": None, "os": "linux",
                                         "config": {"Env": None, "Cmd": None, "User": ""}}))

# config: berthd.yaml shapes.
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "docs", "examples", "berthd.yaml"), "rb") as f:
    put("config", "example", f.read())
put("config", "minimal", "version: 1\n")
put("config", "listen", "version: 1\nlisten: \"[::1]:5000\"\ndata: /var/lib/berth\n")
put("config", "bad-version", "version: 2\n")
put("config", "duration", "90s\n")

# iam_policy
put("iam_policy", "identity", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "PushWeb", "Effect": "Allow", "Action": ["registry:Pull", "registry:Push"],
     "Resource": ["repository/web/*"]}]}))
put("iam_policy", "resource-public", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "registry:Pull",
     "Resource": "repository/web/app"}]}))
put("iam_policy", "deny", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Sid": "NoDelete", "Effect": "Deny", "Action": "registry:Delete*", "Resource": "repository/?eb/*"}]}))
put("iam_policy", "principal-list", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": ["user/alice", "role/ci"], "Action": ["registry:*"],
     "Resource": ["repository/a", "repository/b/*"]}]}))

# http_head
put("http_head", "get", "GET /v2/ HTTP/1.1\r\nHost: registry.example.com:5000\r\nUser-Agent: docker/24\r\nAccept: */*\r\n\r\n")
put("http_head", "put-chunked", "PUT /v2/web/app/blobs/uploads/1?digest=sha256:aa HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
put("http_head", "post-cl", "POST /api/v1/services HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 2\r\nContent-Type: application/json\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\r\n{}")
put("http_head", "smuggle-te-cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
put("http_head", "obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n")
put("http_head", "bare-lf", "GET / HTTP/1.1\nHost: WWW.Example.COM.\nConnection: Upgrade, X-Custom\nUpgrade: websocket\n\n")
put("http_head", "http10", "GET /healthz HTTP/1.0\r\n\r\n")

# dockerfile
put("dockerfile", "multistage", """# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

FROM scratch
COPY --from=build --chown=1000:1000 --chmod=0755 /out/app /app
EXPOSE 8080/tcp 8000-8010
USER 1000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["/app", "-health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app"]
""")
put("dockerfile", "node", """FROM node:20-alpine
ENV NODE_ENV=production \\
    PORT=8080
LABEL org.opencontainers.image.source="https://github.com/octo/app" maintainer=octo
WORKDIR /app
COPY package*.json ./
RUN npm ci --omit=dev && \\
    npm cache clean --force
COPY --exclude=*.md . .
VOLUME ["/data"]
ONBUILD RUN echo hi
SHELL ["/bin/sh", "-eu", "-c"]
CMD node server.js
""")
put("dockerfile", "escape", """# escape=`
FROM mcr.microsoft.com/windows/servercore
ENV abc=hello
ENV abc=bye def=$abc
ENV ghi=${abc:-x} jkl=${UNSET:+y} mno='$abc' pqr="${EMPTY-z}"
RUN echo `
    done
ADD http://example.com/x /x
""")
put("dockerfile", "env-legacy", "FROM busybox\nENV KEY value with spaces\nARG A=1 B\nUSER ${A}:${B}\nMAINTAINER me\nHEALTHCHECK NONE\n")
put("dockerfile", "port", "8000-8010/udp\n")
put("dockerfile", "duration", "1m30.5s\n")

# dockerignore
put("dockerignore", "node", "# comment\nnode_modules\n**/*.log\n!important.log\n/build/../dist\n.git\n*.md\n!README.md\n[a-c]?x\n\\#literal\n")
put("dockerignore", "reinclude", "a/b/c.txt\n*\n!a/b\n!Dockerfile\n")
put("dockerignore", "globs", "a/b/c.txt\n**/c.txt\na/*/c.txt\na/[^x]/c.txt\n**\n")

# buildspec
put("buildspec", "doc", """version: 0.2
env:
  variables:
    GREETING: hello
phases:
  install:
    commands:
      - apk add --no-cache make
  build:
    commands:
      - make generate        # files written to /src are what the Dockerfile sees
""")
put("buildspec", "all-phases", "version: 0.2\nenv: {variables: {GOFLAGS: -mod=vendor, N: 1}}\nphases:\n  pre_build: {commands: [go vet ./...]}\n  build: {commands: [\"go test ./...\"]}\n  post_build: {commands: []}\n")
put("buildspec", "bad", "version: 0.2\nphases:\n  build:\n    commands: make\n")

# github_webhook: first line = X-GitHub-Event, rest = body.
push = {"ref": "refs/heads/main", "before": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "created": False, "deleted": False,
        "repository": {"full_name": "octo/app", "clone_url": "https://github.com/octo/app.git",
                       "html_url": "https://github.com/octo/app"},
        "pusher": {"name": "octocat", "email": "o@x"},
        "head_commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": "Fix all the bugs"}}
put("github_webhook", "push", "push\n" + json.dumps(push))
tagpush = dict(push, ref="refs/tags/v1.0")
put("github_webhook", "push-tag", "push\n" + json.dumps(tagpush))
delete = dict(push, deleted=True, after="0" * 40, head_commit=None)
put("github_webhook", "push-delete", "push\n" + json.dumps(delete))
put("github_webhook", "ping", "ping\n" + json.dumps({"zen": "Keep it logically awesome.", "hook_id": 42,
                                                    "hook": {"type": "Repository"}}))
import urllib.parse
put("github_webhook", "push-form", "push\npayload=" + urllib.parse.quote(json.dumps(push)))
put("github_webhook", "issues", "issues\n{\"action\":\"opened\"}")
put("github_webhook", "signature", "sha256=" + "ab" * 32 + "\n{}")

# tar_path: entry paths and link targets as layers carry them.
for i, p in enumerate(["./", "./etc/passwd", "usr//lib/./x.so", "../escape", "a/../../b", "/etc/shadow",
                       "a/b/..", ".wh..wh..opq", "dir/.wh.file", "", "...", "a/.../b"]):
    put("tar_path", "%02d" % i, p)

# tar_unpack: small real layers (ustar/pax/gnu, gzip), some hostile.
def tar_bytes(entries, fmt=tarfile.PAX_FORMAT, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", tarfile.REGTYPE)
            ti.mode = e.get("mode", 0o644)
            ti.linkname = e.get("link", "")
            ti.mtime = 1700000000
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw

put("tar_unpack", "basic.tar", tar_bytes([
    {"name": "./", "type": tarfile.DIRTYPE, "mode": 0o755},
    {"name": "etc", "type": tarfile.DIRTYPE, "mode": 0o755},
    {"name": "etc/passwd", "data": b"root:x:0:0:root:/root:/bin/sh\n"},
    {"name": "etc/hosts.link", "type": tarfile.LNKTYPE, "link": "etc/passwd"},
    {"name": "bin", "type": tarfile.SYMTYPE, "link": "/usr/bin"},
    {"name": "app/.wh.old", "data": b""},
    {"name": "app/.wh..wh..opq", "data": b""}]))
put("tar_unpack", "gzip.tar.gz", tar_bytes([
    {"name": "usr/local/bin/app", "data": b"\x7fELF", "mode": 0o755}], gz=True))
put("tar_unpack", "gnu-longname.tar", tar_bytes([
    {"name": "d/" + "x" * 150, "data": b"long"}], fmt=tarfile.GNU_FORMAT))
put("tar_unpack", "escape-dotdot.tar", tar_bytes([{"name": "../evil", "data": b"x"}], fmt=tarfile.USTAR_FORMAT))
put("tar_unpack", "escape-hardlink.tar", tar_bytes([{"name": "h", "type": tarfile.LNKTYPE, "link": "../../etc/passwd"}]))
put("tar_unpack", "below-symlink.tar", tar_bytes([
    {"name": "s", "type": tarfile.SYMTYPE, "link": ".."},
    {"name": "s/evil", "data": b"x"}]))
put("tar_unpack", "fifo-dev.tar", tar_bytes([
    {"name": "p", "type": tarfile.FIFOTYPE},
    {"name": "dir", "type": tarfile.DIRTYPE, "mode": 0o700},
    {"name": "dir/f", "data": b"1", "mode": 0o4755}]))
