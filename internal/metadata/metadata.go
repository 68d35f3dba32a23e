// Package metadata records what a registry holds and who points at what:
// repositories, tags, manifests and their references, repository→blob links
// and upload sessions. Bytes live in the blobstore; this package only knows
// digests and sizes.
package metadata

import (
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors returned (wrapped) by every Store implementation.
var (
	// ErrNotFound means the repository, tag, manifest, blob link or upload
	// does not exist.
	ErrNotFound = errors.New("metadata: not found")
	// ErrMissingReference means a manifest references a blob or manifest
	// that the repository does not hold; see MissingReference.
	ErrMissingReference = errors.New("metadata: missing reference")
	// ErrConflict means a concurrent writer changed the row first (for
	// example two chunks written to one upload session at once).
	ErrConflict = errors.New("metadata: conflict")
)

// Manifest is a stored manifest with what it references.
type Manifest struct {
	Repo      string
	Digest    digest.Digest
	MediaType string
	Content   []byte
	// ArtifactType is the manifest's artifactType, or its config media type
	// for image manifests without one, as the referrers API reports it.
	ArtifactType string
	// Subject is the digest of the manifest this one refers to, if any.
	Subject digest.Digest
	// Annotations are kept for the referrers API.
	Annotations map[string]string
	// Blobs are the config and layers an image manifest references.
	Blobs []digest.Digest
	// Children are the manifests an index references.
	Children  []digest.Digest
	CreatedAt time.Time
	// PushedBy is the account recorded on the tags PutManifest points at
	// the manifest ("" for an anonymous push).
	PushedBy string

	// RequiredBlobs must all be linked to the repository for PutManifest
	// to store the manifest.
	RequiredBlobs []digest.Digest
	// RequireChildren makes PutManifest refuse an index whose Children are
	// not all in the repository.
	RequireChildren bool
	// Lineage, if not nil, is recorded with an image manifest in the same
	// transaction by a store that is a LineageStore (unless the manifest
	// already has one).
	Lineage *Lineage
}

// MissingReference is PutManifest's error when a required blob or child
// manifest is not in the repository. It matches ErrMissingReference.
type MissingReference struct {
	Digest digest.Digest
	// Manifest is true for a missing child manifest, false for a blob.
	Manifest bool
}

func (e *MissingReference) Error() string {
	kind := "blob"
	if e.Manifest {
		kind = "manifest"
	}
	return "metadata: referenced " + kind + " " + e.Digest.String() + " not in repository"
}

// Is makes errors.Is(err, ErrMissingReference) hold.
func (e *MissingReference) Is(target error) bool { return target == ErrMissingReference }

// Descriptor describes a manifest without its content, as listed by the
// referrers API.
type Descriptor struct {
	Digest       digest.Digest
	MediaType    string
	Size         int64
	ArtifactType string
	Annotations  map[string]string
}

// Tag is a name pointing at a manifest in a repository.
type Tag struct {
	Name     string
	Digest   digest.Digest
	PushedAt time.Time
}

// Upload is the durable state of a blob upload session, enough to resume it
// on any replica after a restart.
type Upload struct {
	ID        string
	Repo      string
	Algorithm digest.Algorithm
	Offset    int64
	// HashState is the marshalled state of the running hash over the first
	// Offset bytes (encoding.BinaryMarshaler).
	HashState []byte
	// StoreState is the blob store driver's record of the upload's bytes
	// (blobstore.State: for S3 the multipart upload, its parts and tail),
	// kept here, in the same write as Offset, so that any replica can
	// continue the upload. Nil for a driver that keeps its own.
	StoreState []byte
	// Content holds the session's bytes when its record keeps them
	// instead of the blob store: a first chunk small enough (see
	// SmallBlobs) is one write of the record, and its commit another.
	// Nil otherwise; a session has bytes in one place only.
	Content   []byte
	StartedAt time.Time
	UpdatedAt time.Time
	// Writer is the token of the writer that holds the session's lease
	// (see UploadLeaser), "" when none does. AdvanceUpload moves only a
	// session whose writer is still u.Writer, and ends the lease.
	Writer string
	// LeaseUntil is when Writer's lease lapses unless it is renewed.
	LeaseUntil time.Time
}

// Stats summarises what the registry holds.
type Stats struct {
	Blobs int64
	Bytes int64
}
