#!/usr/bin/env bash
# Build the tier-3 control-plane binaries (see DESIGN.md, "Testing: real
# components, in tiers", point 3) at pinned versions, from the Go module proxy
# only, into a cache directory outside the repository:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                             (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                    (sigs.k8s.io/kwok)
#   kuberay-operator + its CRDs                                      (github.com/ray-project/kuberay/ray-operator)
#
# Layout (CACHE defaults to $HOME/.cache/chaosray, override with CHAOSRAY_CACHE):
#   $CACHE/bin/<component>-<version>/...   finished binaries + .stamp
#   $CACHE/bin/current/<binary>            stable symlinks to the above
#   $CACHE/build/<component>-<version>/    throwaway Go modules used for the builds
#   $CACHE/logs/<component>-<version>.log  go output of the last build
#   $CACHE/cluster-bin.env                 KEY=/abs/path lines for test fixtures
#
# Usage: scripts/cluster-binaries.sh          build what is missing (seconds when warm)
#        scripts/cluster-binaries.sh --check  exit 0 if everything is built, 1 if not; never builds
#
# Only the Go toolchain and the Go module proxy ($GOPROXY) are used; GOMODCACHE
# and GOCACHE keep their defaults (outside the repository) so warm runs are quick.
set -Eeuo pipefail

# ---------------------------------------------------------------------------
# Pinned versions
# ---------------------------------------------------------------------------
# Kubernetes release built from k8s.io/kubernetes; every k8s.io/* staging module
# is replaced with the matching v0.<minor>.<patch> release. 1.34.x builds with Go 1.26.
KUBE_VERSION="v1.34.12"
# etcd server: the version kubeadm uses for Kubernetes 1.34
# (cmd/kubeadm/app/constants: DefaultEtcdVersion = "3.6.5-0").
ETCD_VERSION="v3.6.5"
# kwok / kwokctl: latest release in the checksum database (needs Go >= 1.26).
KWOK_VERSION="v0.8.0"
# KubeRay operator: v1.5.1 is built against k8s.io/* v0.34.1 (matches Kubernetes 1.34).
# (v1.5.2 is listed by the proxy but is not in sum.golang.org, so it is not used.)
KUBERAY_VERSION="v1.5.1"

# ---------------------------------------------------------------------------
CACHE="${CHAOSRAY_CACHE:-$HOME/.cache/chaosray}"
BIN_ROOT="$CACHE/bin"
BUILD_ROOT="$CACHE/build"
LOG_ROOT="$CACHE/logs"
CURRENT_DIR="$BIN_ROOT/current"
ENV_FILE="$CACHE/cluster-bin.env"

KUBE_DIR="$BIN_ROOT/kubernetes-$KUBE_VERSION"
ETCD_DIR="$BIN_ROOT/etcd-$ETCD_VERSION"
KWOK_DIR="$BIN_ROOT/kwok-$KWOK_VERSION"
KUBERAY_DIR="$BIN_ROOT/kuberay-$KUBERAY_VERSION"

# Bump when the build recipe below changes, to force a rebuild of everything.
RECIPE_REVISION=1

CURRENT_STEP="setup"

log() { printf '[cluster-binaries] %s\n' "$*"; }
die() {
    printf '[cluster-binaries] ERROR: %s\n' "$*" >&2
    exit 1
}
on_err() {
    local rc=$1 line=$2 cmd=$3
    [[ $rc -eq 3 ]] && return # already reported by run_go
    printf '[cluster-binaries] ERROR: %s failed (exit %s) at line %s: %s\n' \
        "$CURRENT_STEP" "$rc" "$line" "$cmd" >&2
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# run_go WHAT LOG go-args...: run go, appending its output to LOG; on failure
# stop (exit 3) with a message naming WHAT and the go error.
run_go() {
    local what=$1 logf=$2
    shift 2
    printf '\n$ go %s\n' "$*" >>"$logf"
    if ! go "$@" >>"$logf" 2>&1; then
        trap - ERR
        {
            printf '[cluster-binaries] ERROR: could not build %s: "go %s" failed.\n' "$what" "$*"
            printf '[cluster-binaries] go output (last 40 lines of %s):\n' "$logf"
            tail -n 40 "$logf" | sed 's/^/    /'
        } >&2
        exit 3
    fi
}

# ---------------------------------------------------------------------------
# Stamps: a component directory is complete iff its .stamp matches the recipe
# and every expected file is present.
# ---------------------------------------------------------------------------
recipe() { # component version -> one line describing the build
    printf 'component=%s version=%s recipe=%s\n' "$1" "$2" "$RECIPE_REVISION"
}

is_built() { # dir component version files...
    local dir=$1 comp=$2 ver=$3
    shift 3
    [[ -f "$dir/.stamp" ]] || return 1
    [[ "$(head -n1 "$dir/.stamp")" == "$(recipe "$comp" "$ver")" ]] || return 1
    local f
    for f in "$@"; do
        [[ -e "$dir/$f" ]] || return 1
    done
}

# Files expected in each component directory.
KUBE_FILES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ETCD_FILES=(etcd)
KWOK_FILES=(kwok kwokctl)
KUBERAY_FILES=(kuberay-operator crds/ray.io_rayclusters.yaml)

all_built() {
    is_built "$KUBE_DIR" kubernetes "$KUBE_VERSION" "${KUBE_FILES[@]}" &&
        is_built "$ETCD_DIR" etcd "$ETCD_VERSION" "${ETCD_FILES[@]}" &&
        is_built "$KWOK_DIR" kwok "$KWOK_VERSION" "${KWOK_FILES[@]}" &&
        is_built "$KUBERAY_DIR" kuberay "$KUBERAY_VERSION" "${KUBERAY_FILES[@]}"
}

# ---------------------------------------------------------------------------
# Throwaway build modules
# ---------------------------------------------------------------------------
# new_module DIR MODULE VERSION WHAT LOG: create DIR/go.mod that requires
# MODULE@VERSION, copying its `go` and `godebug` lines (the main module's go
# line decides GODEBUG defaults) and turning each local `X => ./path` replace
# into `X => X <version>` where <version> comes from replace_version().
new_module() {
    local dir=$1 mod=$2 ver=$3 what=$4 logf=$5
    rm -rf "$dir"
    mkdir -p "$dir"
    run_go "$what" "$logf" mod download "$mod@$ver"
    local upstream
    upstream="$(go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$upstream" ]] || die "could not build $what: go.mod of $mod@$ver not found in the module cache"

    local goline
    goline="$(grep -m1 -E '^go [0-9]' "$upstream" || echo 'go 1.24.0')"
    {
        echo "// Generated by scripts/cluster-binaries.sh to build $mod@$ver. Do not edit."
        echo "module chaosray.local/build/$(basename "$dir")"
        echo
        echo "$goline"
        grep -E '^godebug ' "$upstream" || true
        echo
        echo "require $mod $ver"
        echo
        echo "replace ("
        # Lines like "\tk8s.io/api => ./staging/src/k8s.io/api" (inside or outside a replace block).
        sed -n -E 's#^(replace[[:space:]]+)?[[:space:]]*([^[:space:]]+)[[:space:]]+=>[[:space:]]+\.\.?/.*$#\2#p' "$upstream" |
            sort -u | while read -r dep; do
                local rv
                rv="$(replace_version "$mod" "$dep")"
                if [[ -n "$rv" ]]; then printf '\t%s => %s %s\n' "$dep" "$dep" "$rv"; fi
            done
        echo ")"
    } >"$dir/go.mod"
}

# replace_version MODULE DEP: the published version to use for a dependency
# that MODULE's go.mod replaces with a local directory ("" = drop the replace).
replace_version() {
    local mod=$1 dep=$2
    case "$mod" in
    k8s.io/kubernetes)
        # staging modules: k8s.io/api etc. are released as v0.<minor>.<patch>
        echo "v0.${KUBE_VERSION#v1.}"
        ;;
    go.etcd.io/etcd/server/v3)
        case "$dep" in
        go.etcd.io/etcd/*/v3) echo "$ETCD_VERSION" ;;
        *) echo "" ;; # e.g. the FORBIDDEN_DEPENDENCY guards
        esac
        ;;
    *)
        echo ""
        ;;
    esac
}

# add_tools DIR pkg...: declare the main packages to build as `tool`s so that
# `go mod tidy` resolves everything they import.
add_tools() {
    local dir=$1
    shift
    local p
    for p in "$@"; do
        echo "tool $p" >>"$dir/go.mod"
    done
}

# build_bins WHAT LOG MODDIR OUTDIR LDFLAGS TAGS name=pkg...
build_bins() {
    local what=$1 logf=$2 moddir=$3 outdir=$4 ldflags=$5 tags=$6
    shift 6
    local spec name pkg t0
    for spec in "$@"; do
        name=${spec%%=*}
        pkg=${spec#*=}
        CURRENT_STEP="building $name ($what)"
        log "building $name ($pkg @ $what) ..."
        t0=$SECONDS
        (
            cd "$moddir"
            export CGO_ENABLED=0 # static binaries, as the upstream release builds
            run_go "$name ($what)" "$logf" build -trimpath \
                ${tags:+-tags="$tags"} -ldflags="$ldflags" -o "$outdir/$name" "$pkg"
        )
        log "  $name built in $((SECONDS - t0))s ($(du -h "$outdir/$name" | cut -f1))"
    done
}

# finish COMPONENT VERSION TMPDIR FINALDIR: stamp and move into place atomically.
finish() {
    local comp=$1 ver=$2 tmp=$3 final=$4
    {
        recipe "$comp" "$ver"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) go=$(go env GOVERSION)"
    } >"$tmp/.stamp"
    rm -rf "$final"
    mv "$tmp" "$final"
}

# ---------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------
build_kubernetes() {
    local what="kubernetes $KUBE_VERSION"
    if is_built "$KUBE_DIR" kubernetes "$KUBE_VERSION" "${KUBE_FILES[@]}"; then
        log "$what: cached ($KUBE_DIR)"
        return
    fi
    local t0=$SECONDS moddir="$BUILD_ROOT/kubernetes-$KUBE_VERSION" logf="$LOG_ROOT/kubernetes-$KUBE_VERSION.log"
    local tmp="$KUBE_DIR.tmp"
    : >"$logf"
    CURRENT_STEP="preparing build module for $what"
    log "$what: preparing build module in $moddir (staging modules -> v0.${KUBE_VERSION#v1.})"
    new_module "$moddir" k8s.io/kubernetes "$KUBE_VERSION" "kube-apiserver/kube-controller-manager/kube-scheduler/kubectl ($what)" "$logf"
    add_tools "$moddir" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
    (cd "$moddir" && run_go "kube binaries ($what): resolving dependencies" "$logf" mod tidy)

    # Version information, as hack/lib/version.sh sets it for release builds.
    local minor=${KUBE_VERSION#v1.}
    minor=${minor%%.*}
    local date
    date="$(cd "$moddir" && { go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes 2>/dev/null || true; })"
    [[ -n "$date" ]] || date="1970-01-01T00:00:00Z"
    local ld="-s -w" p
    for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    done

    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Tags as in hack/lib/golang.sh for non-debug release builds.
    build_bins "$what" "$logf" "$moddir" "$tmp" "$ld" "selinux,notest,grpcnotrace" \
        kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
        kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
        kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
        kubectl=k8s.io/kubernetes/cmd/kubectl
    finish kubernetes "$KUBE_VERSION" "$tmp" "$KUBE_DIR"
    log "$what: done in $((SECONDS - t0))s"
}

build_etcd() {
    local what="etcd $ETCD_VERSION"
    if is_built "$ETCD_DIR" etcd "$ETCD_VERSION" "${ETCD_FILES[@]}"; then
        log "$what: cached ($ETCD_DIR)"
        return
    fi
    local t0=$SECONDS moddir="$BUILD_ROOT/etcd-$ETCD_VERSION" logf="$LOG_ROOT/etcd-$ETCD_VERSION.log"
    local tmp="$ETCD_DIR.tmp"
    : >"$logf"
    CURRENT_STEP="preparing build module for $what"
    log "$what: preparing build module in $moddir"
    new_module "$moddir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "etcd ($what)" "$logf"
    add_tools "$moddir" go.etcd.io/etcd/server/v3
    (cd "$moddir" && run_go "etcd ($what): resolving dependencies" "$logf" mod tidy)
    rm -rf "$tmp"
    mkdir -p "$tmp"
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w" "" etcd=go.etcd.io/etcd/server/v3
    finish etcd "$ETCD_VERSION" "$tmp" "$ETCD_DIR"
    log "$what: done in $((SECONDS - t0))s"
}

build_kwok() {
    local what="kwok $KWOK_VERSION"
    if is_built "$KWOK_DIR" kwok "$KWOK_VERSION" "${KWOK_FILES[@]}"; then
        log "$what: cached ($KWOK_DIR)"
        return
    fi
    local t0=$SECONDS moddir="$BUILD_ROOT/kwok-$KWOK_VERSION" logf="$LOG_ROOT/kwok-$KWOK_VERSION.log"
    local tmp="$KWOK_DIR.tmp"
    : >"$logf"
    CURRENT_STEP="preparing build module for $what"
    log "$what: preparing build module in $moddir"
    new_module "$moddir" sigs.k8s.io/kwok "$KWOK_VERSION" "kwok/kwokctl ($what)" "$logf"
    add_tools "$moddir" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
    (cd "$moddir" && run_go "kwok/kwokctl ($what): resolving dependencies" "$logf" mod tidy)
    # As hack/releases.sh: the version, and the default Kubernetes version kwokctl
    # assumes (so that it generates flags for the kube binaries built above).
    local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
    ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    build_bins "$what" "$logf" "$moddir" "$tmp" "$ld" "" \
        kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl
    finish kwok "$KWOK_VERSION" "$tmp" "$KWOK_DIR"
    log "$what: done in $((SECONDS - t0))s"
}

build_kuberay() {
    local what="kuberay $KUBERAY_VERSION"
    local mod=github.com/ray-project/kuberay/ray-operator
    if is_built "$KUBERAY_DIR" kuberay "$KUBERAY_VERSION" "${KUBERAY_FILES[@]}"; then
        log "$what: cached ($KUBERAY_DIR)"
        return
    fi
    local t0=$SECONDS moddir="$BUILD_ROOT/kuberay-$KUBERAY_VERSION" logf="$LOG_ROOT/kuberay-$KUBERAY_VERSION.log"
    local tmp="$KUBERAY_DIR.tmp"
    : >"$logf"
    CURRENT_STEP="preparing build module for $what"
    log "$what: preparing build module in $moddir"
    new_module "$moddir" "$mod" "$KUBERAY_VERSION" "kuberay-operator ($what)" "$logf"
    add_tools "$moddir" "$mod"
    (cd "$moddir" && run_go "kuberay-operator ($what): resolving dependencies" "$logf" mod tidy)
    rm -rf "$tmp"
    mkdir -p "$tmp/crds"
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w" "" kuberay-operator="$mod"

    CURRENT_STEP="copying CRDs ($what)"
    local src
    src="$(cd "$moddir" && go list -m -f '{{.Dir}}' "$mod")/config/crd/bases"
    [[ -f "$src/ray.io_rayclusters.yaml" ]] || die "KubeRay CRDs not found in $src"
    cp "$src"/*.yaml "$tmp/crds/"
    chmod u+w "$tmp/crds"/*.yaml # files in the module cache are read-only
    log "  CRDs copied: $(cd "$tmp/crds" && echo *.yaml)"
    finish kuberay "$KUBERAY_VERSION" "$tmp" "$KUBERAY_DIR"
    log "$what: done in $((SECONDS - t0))s"
}

write_outputs() {
    CURRENT_STEP="writing $ENV_FILE"
    mkdir -p "$CURRENT_DIR"
    local f
    for f in "${KUBE_FILES[@]}"; do ln -sfn "$KUBE_DIR/$f" "$CURRENT_DIR/$f"; done
    ln -sfn "$ETCD_DIR/etcd" "$CURRENT_DIR/etcd"
    ln -sfn "$KWOK_DIR/kwok" "$CURRENT_DIR/kwok"
    ln -sfn "$KWOK_DIR/kwokctl" "$CURRENT_DIR/kwokctl"
    ln -sfn "$KUBERAY_DIR/kuberay-operator" "$CURRENT_DIR/kuberay-operator"
    ln -sfn "$KUBERAY_DIR/crds" "$CURRENT_DIR/kuberay-crds"

    local tmp="$ENV_FILE.tmp.$$"
    cat >"$tmp" <<EOF
# Generated by scripts/cluster-binaries.sh; absolute paths to the tier-3 control-plane binaries.
CLUSTER_BIN_DIR=$CURRENT_DIR
KUBE_VERSION=$KUBE_VERSION
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
KUBERAY_VERSION=$KUBERAY_VERSION
KUBE_APISERVER=$KUBE_DIR/kube-apiserver
KUBE_CONTROLLER_MANAGER=$KUBE_DIR/kube-controller-manager
KUBE_SCHEDULER=$KUBE_DIR/kube-scheduler
KUBECTL=$KUBE_DIR/kubectl
ETCD=$ETCD_DIR/etcd
KWOK=$KWOK_DIR/kwok
KWOKCTL=$KWOK_DIR/kwokctl
KUBERAY_OPERATOR=$KUBERAY_DIR/kuberay-operator
KUBERAY_CRDS=$KUBERAY_DIR/crds
EOF
    mv "$tmp" "$ENV_FILE"
}

main() {
    case "${1:-}" in
    --check)
        if all_built && [[ -f "$ENV_FILE" ]]; then
            echo "$ENV_FILE"
            exit 0
        fi
        echo "cluster binaries are not built; run $0" >&2
        exit 1
        ;;
    -h | --help)
        sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac

    local t0=$SECONDS
    mkdir -p "$BIN_ROOT" "$BUILD_ROOT" "$LOG_ROOT"

    # One build at a time per cache (e.g. parallel test workers).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$CACHE/.lock"
        flock 9
    fi

    if ! all_built; then
        command -v go >/dev/null 2>&1 ||
            die "the Go toolchain (go) is not on PATH; it is needed to build kube-apiserver, etcd, kwok and the KubeRay operator"
        log "using $(go version); GOPROXY=$(go env GOPROXY); GOMODCACHE=$(go env GOMODCACHE)"
    fi

    build_etcd
    build_kwok
    build_kuberay
    build_kubernetes
    write_outputs

    CURRENT_STEP="done"
    log "all binaries ready in $((SECONDS - t0))s:"
    sed -n 's/^\([A-Z_]*=\/.*\)$/  \1/p' "$ENV_FILE"
    log "env file: $ENV_FILE"
}

main "$@"
