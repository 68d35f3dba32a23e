package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// How a tag changed, as the history records it.
const (
	ViaPush      = "push"
	ViaFloating  = "floating"
	ViaRollback  = "rollback"
	ViaRetention = "retention"
	ViaDelete    = "delete"
	ViaUI        = "ui"
)

// DefaultTagHistory is how long a change is kept when the write names no
// window (the tag-history policy's default).
const DefaultTagHistory = 14 * 24 * time.Hour

// TagChange is one recorded move or delete of a tag.
type TagChange struct {
	ID   int64
	Repo string
	Tag  string
	// From is what the tag pointed at before, "" for a new tag.
	From digest.Digest
	// To is what it points at since, "" for a delete.
	To    digest.Digest
	Actor string
	// Via is how it changed: one of the Via constants.
	Via string
	At  time.Time
	// KeepUntil is when the record may go; until then garbage collection
	// keeps the manifest From names.
	KeepUntil time.Time
}

// ChangeInfo says who changes tags, how, and for how long the changes are
// kept. It travels in the context of a write (WithChangeInfo) rather than
// in every Store method, so that the tag writes of every path (push,
// delete, floating moves, retention) record it without each signature
// growing three parameters.
type ChangeInfo struct {
	// Actor is the account; when "" the manifest's PushedBy (for a push)
	// or the move's PushedBy (for a floating move) is recorded.
	Actor string
	// Via overrides the store's default ("push" for a tag a manifest
	// write points, "delete" for a delete, "floating" for a planned move).
	Via string
	// Keep is how long the record is kept; 0 means DefaultTagHistory.
	Keep time.Duration
}

type changeInfoKey struct{}

// WithChangeInfo returns ctx whose tag writes are recorded as info says.
func WithChangeInfo(ctx context.Context, info ChangeInfo) context.Context {
	return context.WithValue(ctx, changeInfoKey{}, info)
}

// ChangeInfoOf returns the ChangeInfo set on ctx, or the zero value.
func ChangeInfoOf(ctx context.Context) ChangeInfo {
	info, _ := ctx.Value(changeInfoKey{}).(ChangeInfo)
	return info
}

// TagHistory is a Store that records every tag move and delete in the
// transaction of the write, and answers what a tag pointed at before.
type TagHistory interface {
	// TagChanges lists repo's changes of tag ("" for every tag), newest
	// first, skipping offset and returning at most n (n <= 0: all), with
	// how many there are in all.
	TagChanges(ctx context.Context, repo, tag string, offset, n int) ([]TagChange, int, error)
	// PruneTagHistory deletes the changes kept until before now, and
	// returns how many went.
	PruneTagHistory(ctx context.Context, now time.Time) (int64, error)
}
