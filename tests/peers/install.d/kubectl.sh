# kubectl (Debian's kubernetes-client): the manifests test checks that it accepts every
# manifest under manifests/ (client-side dry run against the kmock emulator).
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
