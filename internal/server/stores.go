package server

import (
	"context"
	"log/slog"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata"
)

// Stores is offline access to the two stores cfg names, for `wharf
// migrate`, which copies between two such pairs below the registry
// service (it keeps the times and pushers a push through the service
// would set anew).
type Stores struct {
	Meta  metadata.Store
	Blobs blobstore.Store
}

// Close releases the stores.
func (s *Stores) Close() error { return s.Meta.Close() }

// OpenStores opens the blob and metadata stores cfg names, creating what
// the embedded drivers need (a database file, a blob directory).
func OpenStores(ctx context.Context, cfg config.Config, log *slog.Logger) (*Stores, error) {
	blobs, meta, err := openStores(ctx, cfg, log, newOptions(nil))
	if err != nil {
		return nil, err
	}
	return &Stores{Meta: meta, Blobs: blobs}, nil
}
