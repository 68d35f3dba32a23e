package metadata

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// RepositoryInfo is what a listing shows of one repository: the read
// model of the web UI and the Hub-style API.
type RepositoryInfo struct {
	Name string
	// Description is the one-line summary; Readme is the full markdown
	// (only GetRepositoryInfo fills it).
	Description string
	Readme      string
	CreatedAt   time.Time
	// LastPushed is the newest tag push, zero if the repository has no tags.
	LastPushed time.Time
	TagCount   int64
	// StorageSize is the sum of the blobs the repository links, each once.
	StorageSize int64
	PullCount   int64
	LastPulled  time.Time
}

// Repository orders.
const (
	SortByName       = "name"
	SortByLastPushed = "last_pushed"
	// SortByRelevance ranks a search (RepositoryQuery.Search): a name
	// whose last component is the term, then names where the term starts
	// a component, then other names containing it, then description
	// matches; within a rank the most pulled first, then by name.
	SortByRelevance = "relevance"
)

// VisibleTo limits a listing to the repositories a viewer may pull: the
// public ones (a repository without a recorded visibility has Default),
// and every repository in Namespaces.
type VisibleTo struct {
	Namespaces []string
	Default    string // "public" or "private"
}

// RepositoryQuery selects a page of repositories.
type RepositoryQuery struct {
	// Namespace, if set, keeps repositories named Namespace/…
	Namespace string
	// Search keeps names or descriptions containing it (case-insensitive).
	Search string
	// Visible, if not nil, keeps what a viewer may see.
	Visible *VisibleTo
	// Sort is SortByName, SortByLastPushed (newest first) or
	// SortByRelevance (by name without a Search).
	Sort          string
	Offset, Limit int
}

// TagInfo is a tag with the manifest it points at, for listings.
type TagInfo struct {
	Name       string
	Digest     digest.Digest
	PushedAt   time.Time
	PushedBy   string
	LastPulled time.Time
	MediaType  string
	Content    []byte
}

// TagQuery selects a page of a repository's tags.
type TagQuery struct {
	// Filter keeps tag names containing it.
	Filter string
	// Sort is SortByName or SortByLastPushed (newest first).
	Sort          string
	Offset, Limit int
}

// Pull is a batch of pulls of one tag, flushed from memory.
type Pull struct {
	Repo, Tag string
	Count     int64
	At        time.Time
}
