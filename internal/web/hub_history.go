package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
)

// hubTagChange is one recorded move or delete of a tag: from and to are
// null for a new tag and a delete.
type hubTagChange struct {
	ID        int64   `json:"id"`
	Tag       string  `json:"tag"`
	From      *string `json:"from"`
	To        *string `json:"to"`
	Actor     string  `json:"actor"`
	Via       string  `json:"via"`
	At        *string `json:"at"`
	KeepUntil *string `json:"keep_until"`
}

func hubChangeOf(c registry.TagChange) hubTagChange {
	opt := func(d digest.Digest) *string {
		if d == "" {
			return nil
		}
		s := d.String()
		return &s
	}
	return hubTagChange{ID: c.ID, Tag: c.Tag, From: opt(c.From), To: opt(c.To), Actor: c.Actor, Via: c.Via,
		At: hubTime(c.At), KeepUntil: hubTime(c.KeepUntil)}
}

// apiTagHistory is GET …/tags/{tag}/history: the tag's moves and deletes,
// newest first, for whoever may pull the repository.
func (h *Handler) apiTagHistory(w http.ResponseWriter, r *http.Request) {
	_, name, ok := h.apiRepo(w, r, auth.ActionPull)
	if !ok {
		return
	}
	page, size, ok := hubPaging(w, r)
	if !ok {
		return
	}
	changes, total, err := h.reg.TagHistory(r.Context(), name, r.PathValue("tag"), (page-1)*size, size)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	if pageGone(w, page, len(changes)) {
		return
	}
	results := make([]hubTagChange, 0, len(changes))
	for _, c := range changes {
		results = append(results, hubChangeOf(c))
	}
	writeJSON(w, http.StatusOK, envelope(r, page, size, total, results))
}

// apiRestoreTag is POST …/tags/{tag}/restore {"digest": "sha256:…"}:
// points the tag at a manifest it pointed at before (or any the
// repository holds), for whoever may push.
func (h *Handler) apiRestoreTag(w http.ResponseWriter, r *http.Request) {
	c, name, ok := h.apiRepo(w, r, auth.ActionPush)
	if !ok {
		return
	}
	var body struct {
		Digest string `json:"digest"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody)).Decode(&body); err != nil || body.Digest == "" {
		writeSpecError(w, http.StatusBadRequest, "DIGEST_INVALID", `the body must be {"digest": "sha256:…"}`)
		return
	}
	d, err := digest.Parse(body.Digest)
	if err != nil {
		writeSpecError(w, http.StatusBadRequest, "DIGEST_INVALID", "digest "+body.Digest+": "+err.Error())
		return
	}
	tag := r.PathValue("tag")
	if _, err := h.reg.RestoreTag(actingAs(r.Context(), c), name, tag, d); err != nil {
		if !restoreError(w, err) {
			h.apiError(w, r, err)
		}
		return
	}
	detail, err := h.reg.TagDetail(r.Context(), name, tag)
	if err != nil {
		h.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubTagOf(detail))
}

// restoreError answers the refusals of a restore in the spec's error
// shape (an immutable tag, a manifest gone), true if err was one.
func restoreError(w http.ResponseWriter, err error) bool {
	var de *registry.Error
	if !errors.As(err, &de) {
		return false
	}
	switch {
	case errors.Is(err, registry.ErrDenied):
		writeSpecError(w, http.StatusForbidden, "DENIED", de.Message)
	case errors.Is(err, registry.ErrManifestUnknown):
		writeSpecError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", de.Message)
	case errors.Is(err, registry.ErrTagInvalid):
		writeSpecError(w, http.StatusBadRequest, "TAG_INVALID", de.Message)
	case errors.Is(err, registry.ErrDigestInvalid):
		writeSpecError(w, http.StatusBadRequest, "DIGEST_INVALID", de.Message)
	default:
		return false
	}
	return true
}
