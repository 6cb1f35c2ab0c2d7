#!/usr/bin/env bash
# Build the test cluster's control-plane binaries (see README.md, "The test
# Kubernetes cluster") at pinned versions, from the Go module proxy
# only, into a cache directory outside the repository:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                             (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                    (sigs.k8s.io/kwok)
#   kuberay-operator + its CRDs                                      (github.com/ray-project/kuberay/ray-operator)
#
# and, with --lab, the node components of the lab (real nodes on this machine):
#
#   kubelet, kube-proxy                                              (k8s.io/kubernetes, same release)
#   containerd, containerd-shim-runc-v2, ctr                         (github.com/containerd/containerd/v2)
#   bridge, host-local, loopback, portmap CNI plugins                (github.com/containernetworking/plugins)
#   coredns                                                          (github.com/coredns/coredns)
#   pause                                                            (k8s.io/kubernetes build/pause/linux/pause.c, gcc -static)
#
# Layout (CACHE defaults to $HOME/.cache/chaosray, override with CHAOSRAY_CACHE):
#   $CACHE/bin/<component>-<version>/...   finished binaries + .stamp
#   $CACHE/bin/current/<binary>            stable symlinks to the above
#   $CACHE/build/<component>-<version>/    throwaway Go modules used for the builds
#   $CACHE/logs/<component>-<version>.log  go output of the last build
#   $CACHE/cluster-bin.env                 KEY=/abs/path lines for test fixtures
#   $CACHE/lab-bin.env                     the same for the lab's node components (--lab)
#
# Usage: scripts/cluster-binaries.sh          build what is missing (seconds when warm)
#        scripts/cluster-binaries.sh --lab    the same, plus the lab's node components
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
# containerd: containerd's own support matrix (RELEASES.md) asks Kubernetes 1.34
# for 2.1.3+, 2.0.6+, 1.7.28+ or 1.6.39+; Debian 12's 1.6.20 is below it.
CONTAINERD_VERSION="v2.4.2"
# CNI plugins: bridge + host-local + loopback (+ portmap), built without cgo.
CNI_VERSION="v1.10.0"
# CoreDNS, run as a process with its kubernetes plugin and no upstream.
COREDNS_VERSION="v1.15.0"
# The pause image's binary: Kubernetes 1.34's build/pause (TAG 3.10.1).
PAUSE_VERSION="3.10.1"

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
NODE_DIR="$BIN_ROOT/kubernetes-node-$KUBE_VERSION"
CONTAINERD_DIR="$BIN_ROOT/containerd-$CONTAINERD_VERSION"
CNI_DIR="$BIN_ROOT/cni-plugins-$CNI_VERSION"
COREDNS_DIR="$BIN_ROOT/coredns-$COREDNS_VERSION"
PAUSE_DIR="$BIN_ROOT/pause-$PAUSE_VERSION"
LAB_ENV_FILE="$CACHE/lab-bin.env"

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
NODE_FILES=(kubelet kube-proxy)
CONTAINERD_FILES=(containerd containerd-shim-runc-v2 ctr)
CNI_FILES=(bridge host-local loopback portmap)
COREDNS_FILES=(coredns)
PAUSE_FILES=(pause)

lab_built() {
    is_built "$NODE_DIR" kubernetes-node "$KUBE_VERSION" "${NODE_FILES[@]}" &&
        is_built "$CONTAINERD_DIR" containerd "$CONTAINERD_VERSION" "${CONTAINERD_FILES[@]}" &&
        is_built "$CNI_DIR" cni-plugins "$CNI_VERSION" "${CNI_FILES[@]}" &&
        is_built "$COREDNS_DIR" coredns "$COREDNS_VERSION" "${COREDNS_FILES[@]}" &&
        is_built "$PAUSE_DIR" pause "$PAUSE_VERSION" "${PAUSE_FILES[@]}"
}

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
# start_component COMP VERSION DIR FILES_ARRAY MODULE TOOL...: returns 1 when
# DIR is already built (nothing to do); otherwise prepares the throwaway build
# module requiring MODULE@VERSION with the TOOLs (main packages) resolved, and
# sets what/moddir/logf/tmp/t0 for the build that follows.
start_component() {
    local comp=$1 ver=$2 dir=$3
    local -n files=$4
    local mod=$5
    shift 5
    what="$comp $ver"
    if is_built "$dir" "$comp" "$ver" "${files[@]}"; then
        log "$what: cached ($dir)"
        return 1
    fi
    t0=$SECONDS
    moddir="$BUILD_ROOT/$comp-$ver"
    logf="$LOG_ROOT/$comp-$ver.log"
    tmp="$dir.tmp"
    : >"$logf"
    CURRENT_STEP="preparing build module for $what"
    log "$what: preparing build module in $moddir"
    new_module "$moddir" "$mod" "$ver" "$comp ($what)" "$logf"
    add_tools "$moddir" "$@"
    (cd "$moddir" && run_go "$comp ($what): resolving dependencies" "$logf" mod tidy)
    rm -rf "$tmp"
    mkdir -p "$tmp"
}

# end_component COMP VERSION DIR: stamp the build and move it into place.
end_component() {
    finish "$1" "$2" "$tmp" "$3"
    log "$what: done in $((SECONDS - t0))s"
}

# kube_ldflags MODDIR: version information, as hack/lib/version.sh sets it for
# release builds.
kube_ldflags() {
    local moddir=$1
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
    printf '%s' "$ld"
}

build_kubernetes() {
    local k=k8s.io/kubernetes/cmd
    start_component kubernetes "$KUBE_VERSION" "$KUBE_DIR" KUBE_FILES k8s.io/kubernetes \
        "$k/kube-apiserver" "$k/kube-controller-manager" "$k/kube-scheduler" "$k/kubectl" || return 0
    # Tags as in hack/lib/golang.sh for non-debug release builds.
    build_bins "$what" "$logf" "$moddir" "$tmp" "$(kube_ldflags "$moddir")" "selinux,notest,grpcnotrace" \
        kube-apiserver="$k/kube-apiserver" kube-controller-manager="$k/kube-controller-manager" \
        kube-scheduler="$k/kube-scheduler" kubectl="$k/kubectl"
    end_component kubernetes "$KUBE_VERSION" "$KUBE_DIR"
}

build_etcd() {
    start_component etcd "$ETCD_VERSION" "$ETCD_DIR" ETCD_FILES go.etcd.io/etcd/server/v3 \
        go.etcd.io/etcd/server/v3 || return 0
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w" "" etcd=go.etcd.io/etcd/server/v3
    end_component etcd "$ETCD_VERSION" "$ETCD_DIR"
}

build_kwok() {
    start_component kwok "$KWOK_VERSION" "$KWOK_DIR" KWOK_FILES sigs.k8s.io/kwok \
        sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl || return 0
    # As hack/releases.sh: the version, and the default Kubernetes version kwokctl
    # assumes (so that it generates flags for the kube binaries built above).
    local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
    ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
    build_bins "$what" "$logf" "$moddir" "$tmp" "$ld" "" \
        kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl
    end_component kwok "$KWOK_VERSION" "$KWOK_DIR"
}

build_kuberay() {
    local mod=github.com/ray-project/kuberay/ray-operator
    start_component kuberay "$KUBERAY_VERSION" "$KUBERAY_DIR" KUBERAY_FILES "$mod" "$mod" || return 0
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w" "" kuberay-operator="$mod"
    CURRENT_STEP="copying CRDs ($what)"
    local src
    src="$(cd "$moddir" && go list -m -f '{{.Dir}}' "$mod")/config/crd/bases"
    [[ -f "$src/ray.io_rayclusters.yaml" ]] || die "KubeRay CRDs not found in $src"
    mkdir -p "$tmp/crds"
    cp "$src"/*.yaml "$tmp/crds/"
    chmod u+w "$tmp/crds"/*.yaml # files in the module cache are read-only
    log "  CRDs copied: $(cd "$tmp/crds" && echo *.yaml)"
    end_component kuberay "$KUBERAY_VERSION" "$KUBERAY_DIR"
}

build_kube_node() {
    local k=k8s.io/kubernetes/cmd
    start_component kubernetes-node "$KUBE_VERSION" "$NODE_DIR" NODE_FILES k8s.io/kubernetes \
        "$k/kubelet" "$k/kube-proxy" || return 0
    build_bins "$what" "$logf" "$moddir" "$tmp" "$(kube_ldflags "$moddir")" "selinux,notest,grpcnotrace" \
        kubelet="$k/kubelet" kube-proxy="$k/kube-proxy"
    end_component kubernetes-node "$KUBE_VERSION" "$NODE_DIR"
}

build_containerd() {
    local mod=github.com/containerd/containerd/v2
    start_component containerd "$CONTAINERD_VERSION" "$CONTAINERD_DIR" CONTAINERD_FILES "$mod" \
        "$mod/cmd/containerd" "$mod/cmd/containerd-shim-runc-v2" "$mod/cmd/ctr" || return 0
    local ld="-s -w -X $mod/version.Version=$CONTAINERD_VERSION -X $mod/version.Package=$mod"
    # Without cgo btrfs drops out by itself; the shim is built with no_grpc as
    # containerd's Makefile builds it.
    build_bins "$what" "$logf" "$moddir" "$tmp" "$ld" "" \
        containerd="$mod/cmd/containerd" ctr="$mod/cmd/ctr"
    build_bins "$what" "$logf" "$moddir" "$tmp" "$ld" "no_grpc" \
        containerd-shim-runc-v2="$mod/cmd/containerd-shim-runc-v2"
    end_component containerd "$CONTAINERD_VERSION" "$CONTAINERD_DIR"
}

build_cni() {
    local mod=github.com/containernetworking/plugins
    start_component cni-plugins "$CNI_VERSION" "$CNI_DIR" CNI_FILES "$mod" \
        "$mod/plugins/main/bridge" "$mod/plugins/ipam/host-local" \
        "$mod/plugins/main/loopback" "$mod/plugins/meta/portmap" || return 0
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w -X $mod/pkg/utils/buildversion.BuildVersion=$CNI_VERSION" "" \
        bridge="$mod/plugins/main/bridge" host-local="$mod/plugins/ipam/host-local" \
        loopback="$mod/plugins/main/loopback" portmap="$mod/plugins/meta/portmap"
    end_component cni-plugins "$CNI_VERSION" "$CNI_DIR"
}

build_coredns() {
    local mod=github.com/coredns/coredns
    start_component coredns "$COREDNS_VERSION" "$COREDNS_DIR" COREDNS_FILES "$mod" "$mod" || return 0
    build_bins "$what" "$logf" "$moddir" "$tmp" "-s -w" "" coredns="$mod"
    end_component coredns "$COREDNS_VERSION" "$COREDNS_DIR"
}

build_pause() {
    local what="pause $PAUSE_VERSION"
    if is_built "$PAUSE_DIR" pause "$PAUSE_VERSION" "${PAUSE_FILES[@]}"; then
        log "$what: cached ($PAUSE_DIR)"
        return
    fi
    CURRENT_STEP="building $what"
    local tmp="$PAUSE_DIR.tmp" src logf="$LOG_ROOT/pause-$PAUSE_VERSION.log"
    : >"$logf"
    run_go "pause ($what)" "$logf" mod download "k8s.io/kubernetes@$KUBE_VERSION"
    src="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')/build/pause/linux/pause.c"
    [[ -f "$src" ]] || die "could not build $what: $src not found in the module cache"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # As build/pause/Makefile builds it (static, -Os), with a version of ours.
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-chaosray" -o "$tmp/pause" "$src" ||
        die "could not build $what: gcc failed (libc6-dev gives the static libc)"
    finish pause "$PAUSE_VERSION" "$tmp" "$PAUSE_DIR"
    log "$what: built"
}

write_lab_outputs() {
    CURRENT_STEP="writing $LAB_ENV_FILE"
    local tmp="$LAB_ENV_FILE.tmp.$$"
    cat >"$tmp" <<EOF
# Generated by scripts/cluster-binaries.sh --lab; absolute paths to the lab's node components.
KUBE_VERSION=$KUBE_VERSION
CONTAINERD_VERSION=$CONTAINERD_VERSION
CNI_VERSION=$CNI_VERSION
COREDNS_VERSION=$COREDNS_VERSION
PAUSE_VERSION=$PAUSE_VERSION
KUBELET=$NODE_DIR/kubelet
KUBE_PROXY=$NODE_DIR/kube-proxy
CONTAINERD=$CONTAINERD_DIR/containerd
CONTAINERD_SHIM=$CONTAINERD_DIR/containerd-shim-runc-v2
CTR=$CONTAINERD_DIR/ctr
CNI_BIN_DIR=$CNI_DIR
COREDNS=$COREDNS_DIR/coredns
PAUSE=$PAUSE_DIR/pause
EOF
    mv "$tmp" "$LAB_ENV_FILE"
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
    local lab=0
    case "${1:-}" in
    --lab) lab=1 ;;
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

    if ! all_built || { ((lab)) && ! lab_built; }; then
        command -v go >/dev/null 2>&1 ||
            die "the Go toolchain (go) is not on PATH; it is needed to build kube-apiserver, etcd, kwok and the KubeRay operator"
        log "using $(go version); GOPROXY=$(go env GOPROXY); GOMODCACHE=$(go env GOMODCACHE)"
    fi

    build_etcd
    build_kwok
    build_kuberay
    build_kubernetes
    write_outputs
    if ((lab)); then
        build_pause
        build_cni
        build_coredns
        build_containerd
        build_kube_node
        write_lab_outputs
        log "lab components: $LAB_ENV_FILE"
    fi

    CURRENT_STEP="done"
    log "all binaries ready in $((SECONDS - t0))s:"
    sed -n 's/^\([A-Z_]*=\/.*\)$/  \1/p' "$ENV_FILE"
    log "env file: $ENV_FILE"
}

main "$@"
