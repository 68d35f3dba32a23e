package web_test

import (
	"testing"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestHubAPI_InternalDestinationsRefusedUnlessAllowed: by default a
// namespace admin cannot aim a webhook or a replication rule at the
// registry's own host or network (loopback, link-local, private).
func TestHubAPI_InternalDestinationsRefusedUnlessAllowed(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword),
		registrytest.WithConfig(func(c *config.Config) { c.AllowInternalDestinations = false }))
	seedAccounts(t, srv)
	alice := basic("alice", userPassword)
	hooks, rules := "/v2/namespaces/alice/webhooks", "/v2/namespaces/alice/replication"
	runAPICases(t, srv.URL, []apiCase{
		{"a webhook to loopback", "POST", hooks, `{"url": "http://127.0.0.1:8080/hook"}`, alice, 400, "WEBHOOK_INVALID"},
		{"a webhook to the cloud metadata service", "POST", hooks, `{"url": "http://169.254.169.254/latest/meta-data"}`, alice, 400, "WEBHOOK_INVALID"},
		{"a webhook to localhost", "POST", hooks, `{"url": "http://localhost/hook"}`, alice, 400, "WEBHOOK_INVALID"},
		{"a webhook to a public name", "POST", hooks, `{"url": "https://ci.example/hook"}`, alice, 201, ""},
		{"a rule to a private address", "POST", rules, `{"url": "http://10.0.0.5:5000"}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"a rule to IPv6 loopback", "POST", rules, `{"url": "http://[::1]:5000"}`, alice, 400, "REPLICATION_RULE_INVALID"},
		{"a rule to a public name", "POST", rules, `{"url": "https://registry.example"}`, alice, 201, ""},
	})
}

// TestHubAPI_InternalDestinationsAllowedByConfig: with
// allow_internal_destinations (as every other test runs), they are not.
func TestHubAPI_InternalDestinationsAllowedByConfig(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	alice := basic("alice", userPassword)
	runAPICases(t, srv.URL, []apiCase{
		{"a webhook to loopback", "POST", "/v2/namespaces/alice/webhooks", `{"url": "http://127.0.0.1:8080/hook"}`, alice, 201, ""},
		{"a rule to a private address", "POST", "/v2/namespaces/alice/replication", `{"url": "http://10.0.0.5:5000"}`, alice, 201, ""},
	})
}
