package web

import (
	"net/http"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// hubUsage is the storage a namespace or repository uses, against its
// namespace's quota.
type hubUsage struct {
	// Name is the namespace or the repository.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Blobs     int64  `json:"blobs"`
	Bytes     int64  `json:"bytes"`
	// QuotaBytes is 0 without a quota; Quota is the policy's value
	// ("none") and QuotaPattern where it is set.
	QuotaBytes   int64   `json:"quota_bytes"`
	Quota        string  `json:"quota"`
	QuotaPattern string  `json:"quota_pattern"`
	Percent      float64 `json:"percent"`
	Over         bool    `json:"over"`
}

func hubUsageOf(u registry.Usage) hubUsage {
	out := hubUsage{Name: u.Name, Namespace: u.Namespace, Blobs: u.Blobs, Bytes: u.Bytes,
		QuotaBytes: u.Quota, Quota: u.QuotaText, QuotaPattern: u.Pattern, Percent: u.Percent(), Over: u.Over()}
	if out.Quota == "" {
		out.Quota = "none"
	}
	return out
}

// apiUsage serves GET …/usage of a namespace (to those who may read its
// policies: its members) or of a repository (to those who may pull it).
func (h *Handler) apiUsage(w http.ResponseWriter, r *http.Request) {
	c, ok := h.apiCaller(w, r)
	if !ok {
		return
	}
	pattern, rightsOn := policyPattern(r)
	if err := registry.ValidatePattern(pattern); err != nil {
		writeSpecError(w, http.StatusNotFound, "NAME_INVALID", "no such repository or namespace")
		return
	}
	var u registry.Usage
	var err error
	if r.PathValue("repo") != "" {
		if !h.apiRepoAccess(w, r, c, rightsOn, auth.ActionPull) {
			return
		}
		u, err = h.reg.RepositoryUsage(r.Context(), rightsOn)
	} else {
		if !h.apiMay(w, r, c, rightsOn, auth.ActionPull) {
			return
		}
		u, err = h.reg.NamespaceUsage(r.Context(), r.PathValue("ns"))
	}
	if err != nil {
		h.apiInternal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubUsageOf(u))
}
