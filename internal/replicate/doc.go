// Package replicate copies repositories from this registry to other OCI
// registries, and keeps the credentials it needs for them sealed at rest
// (with internal/secretkey).
package replicate
