// Package deploy holds the Kubernetes manifests (kustomize base and
// overlays) and the test that renders and checks them offline. It is a
// module of its own so the Kubernetes libraries stay out of the server's.
package deploy
