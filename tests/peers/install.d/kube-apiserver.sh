# kube-apiserver, etcd and kubectl, built with Go from the Go module registry at the
# versions pinned in tests/peers/kube/go.mod: the real Kubernetes API server the
# Kubernetes adapter's and the in-cluster daemon's tests run against. A build is kept in
# a cache folder named after go.mod, go.sum and this script, so it happens once per version per
# machine (set LIFEBOAT_PEER_CACHE to move the cache, e.g. onto a CI cache volume).
# Without Go the build is skipped and so are the tests that need it (they say so).
apt_install openssl
kube_module=$root/tests/peers/kube
if ! command -v go >/dev/null 2>&1; then
  echo "install.sh: Go is not installed: the Kubernetes tests will be skipped." >&2
  echo "install.sh:   install Go 1.26 or newer (go.dev/dl, or Debian's golang-go from bookworm-backports) and run this script again." >&2
else
  kube_key=$(cat "$kube_module/go.mod" "$kube_module/go.sum" "$root/tests/peers/install.d/kube-apiserver.sh" | sha256sum | cut -c1-16)
  kube_cache=${LIFEBOAT_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat}/kube-$kube_key
  if [ ! -x "$kube_cache/bin/kube-apiserver" ] || [ ! -x "$kube_cache/bin/etcd" ] || [ ! -x "$kube_cache/bin/kubectl" ]; then
    kube_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$kube_module/go.mod")
    echo "install.sh: building kube-apiserver, etcd and kubectl $kube_version with $(go env GOVERSION) (once per version; about 10 minutes on 2 cores)"
    kube_start=$(date +%s)
    rm -rf "$kube_cache.tmp" && mkdir -p "$kube_cache.tmp/bin"
    # The version the servers report (/version, kubectl version) is stamped at link time,
    # as Kubernetes' own release build does.
    kube_minor=$(echo "$kube_version" | cut -d. -f2)
    kube_ldflags="-s"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      kube_ldflags="$kube_ldflags -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
    done
    (cd "$kube_module" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags="$kube_ldflags" \
      -o "$kube_cache.tmp/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3)
    # etcd's main package is its module's root: go build names it after the path's last
    # element before /v3.
    mv "$kube_cache.tmp/bin/server" "$kube_cache.tmp/bin/etcd"
    rm -rf "$kube_cache" && mv "$kube_cache.tmp" "$kube_cache"
    echo "install.sh: built the Kubernetes peers in $(( $(date +%s) - kube_start )) s into $kube_cache"
  fi
  mkdir -p "$root/.peers"
  ln -sfn "$kube_cache" "$root/.peers/kube"
fi
