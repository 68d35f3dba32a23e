package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// The policy routes of the JSON API: the settings of one repository
// (PATTERN = ns/repo) or of a namespace (PATTERN = ns/*). Anyone who may
// pull the repository (for a namespace: its members) reads them; its
// owners and admins (delete rights, as for visibility) change them.

// hubSetting is one key's value in effect and where it comes from.
type hubSetting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Pattern set the value; "" for the key's default.
	Pattern string `json:"pattern"`
	// Inherited: a broader pattern set it, not the one asked about.
	Inherited bool    `json:"inherited"`
	SetBy     string  `json:"set_by"`
	SetAt     *string `json:"set_at"`
	Doc       string  `json:"doc"`
}

type hubPolicies struct {
	Pattern  string       `json:"pattern"`
	Policies []hubSetting `json:"policies"`
}

// policyPattern is the pattern a policy route names and the repository
// name its rights are checked on: a namespace's are those of any of its
// repositories.
func policyPattern(r *http.Request) (pattern, rightsOn string) {
	if r.PathValue("repo") != "" {
		name := repoName(r)
		return name, name
	}
	return r.PathValue("ns") + "/*", r.PathValue("ns") + "/*"
}

// policyCaller identifies the caller of a route on a repository's or a
// namespace's settings and checks its rights: to read (GET) those of
// pull, to change those of delete. It answers the request itself when
// the caller may not.
func (h *Handler) policyCaller(w http.ResponseWriter, r *http.Request) (caller, string, bool) {
	c, ok := h.apiCaller(w, r)
	if !ok {
		return c, "", false
	}
	pattern, rightsOn := policyPattern(r)
	if err := registry.ValidatePattern(pattern); err != nil {
		writeSpecError(w, http.StatusNotFound, "NAME_INVALID", "no such repository or namespace")
		return c, "", false
	}
	need := auth.ActionDelete
	if r.Method == http.MethodGet {
		need = auth.ActionPull
	}
	if r.PathValue("repo") != "" && !h.apiRepoAccess(w, r, c, rightsOn, need) {
		return c, "", false
	}
	// A namespace is no secret (its page lists its public repositories):
	// a refusal is 401 or 403, not 404.
	if r.PathValue("repo") == "" && !h.apiMay(w, r, c, rightsOn, need) {
		return c, "", false
	}
	return c, pattern, true
}

// apiPolicies serves GET, POST and DELETE on …/policies[/{key}].
func (h *Handler) apiPolicies(w http.ResponseWriter, r *http.Request) {
	c, pattern, ok := h.policyCaller(w, r)
	if !ok {
		return
	}
	pol := h.reg.Policies()
	if pol == nil {
		writeSpecError(w, http.StatusNotFound, "UNSUPPORTED", "this registry's database keeps no policies")
		return
	}
	ctx := actingAs(r.Context(), c)
	var err error
	switch r.Method {
	case http.MethodPost:
		var values map[string]string
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		if derr := dec.Decode(&values); derr != nil {
			writeSpecError(w, http.StatusBadRequest, "POLICY_INVALID", `the body must be a JSON object of KEY: "VALUE" strings, as {"floating-tags": "semver"}`)
			return
		}
		err = pol.Set(ctx, pattern, values)
	case http.MethodDelete:
		if err = pol.Remove(ctx, pattern, r.PathValue("key")); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	var de *registry.Error
	switch {
	case errors.Is(err, registry.ErrPolicyInvalid) && errors.As(err, &de):
		writeSpecError(w, http.StatusBadRequest, "POLICY_INVALID", de.Message)
		return
	case errors.Is(err, registry.ErrPolicyUnknown) && errors.As(err, &de):
		writeSpecError(w, http.StatusNotFound, "POLICY_UNKNOWN", de.Message)
		return
	case err != nil:
		h.apiInternal(w, r, err)
		return
	}
	settings, err := policySettings(r, pol, pattern)
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubPolicies{Pattern: pattern, Policies: settings})
}

// policySettings lists every known key's value in effect for pattern.
func policySettings(r *http.Request, pol *registry.Policies, pattern string) ([]hubSetting, error) {
	eff, err := pol.Effective(r.Context(), pattern)
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	for _, k := range registry.PolicyKeys() {
		docs[k.Name] = k.Doc
	}
	out := make([]hubSetting, 0, len(eff))
	for _, s := range eff {
		out = append(out, hubSetting{Key: s.Key, Value: s.Value, Pattern: s.Pattern, Inherited: s.Pattern != pattern,
			SetBy: s.SetBy, SetAt: hubTime(s.SetAt), Doc: docs[s.Key]})
	}
	return out, nil
}

// writeSpecError answers in Hub's shape (message) with the distribution
// spec's errors list beside it, so that both kinds of client read it.
func writeSpecError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"message": msg, "errinfo": map[string]any{},
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}
