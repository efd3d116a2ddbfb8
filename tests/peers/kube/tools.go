//go:build tools

// Package tools names the commands this module builds, so `go mod tidy` keeps their
// dependencies; it is never compiled.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
