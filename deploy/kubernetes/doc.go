// Package kubernetes holds no code: its tests build the kustomize base and
// overlays under this directory, decode every manifest strictly into the
// Kubernetes API types, and check that ports, probe paths, file names and
// the user agree with the code and the Dockerfile.
//
// It is a module of its own so that the Kubernetes API types and kustomize
// stay out of cutover's dependencies; .ci/run runs its tests.
package kubernetes
