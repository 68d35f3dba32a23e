package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// A POST that opens an upload session writes nothing durable when the
// registry can sign its ids: the id itself carries what the session row
// would have said at that point (repository, hash algorithm, start time),
// with a MAC under the registry's secret key, so that the first PATCH or
// the final PUT can start from it on any process that holds the key, also
// after a restart. The common monolithic push (POST, then PUT with the
// whole body) then costs one metadata commit per blob instead of three
// (session insert, then link and delete).
//
// The rules of sessions still hold. Only an id this registry issued for
// that repository verifies, so a bogus id is refused before any lookup or
// per-request state (a forged one would need the key). A session that was
// finished or cancelled is recorded as ended (metadata.EndedUploads), in
// the transaction that ends it, so it never looks new again; an id older
// than the upload purge age has expired, and its ended record with it.

// signedIDBytes is the decoded length of a signed id: version and
// algorithm (1), random (11), start time (8), MAC (12). Base64url without
// padding makes 43 characters, within maxUploadIDLen and the characters
// validUploadID allows.
const (
	signedIDBytes = 32
	signedIDLen   = 43
	idMACBytes    = 12
)

// unrecordedSessions returns the signer of ids and the record of ended
// sessions when sessions may start unrecorded: with a key, on a metadata
// store that records ended sessions and that no other process writes
// (replicas sharing PostgreSQL keep recording each session at its POST,
// the row their writers' claims need).
func unrecordedSessions(meta metadata.Store, key []byte) (*uploadIDs, metadata.EndedUploads) {
	ended, ok := meta.(metadata.EndedUploads)
	if len(key) == 0 || !ok {
		return nil, nil
	}
	if l, ok := meta.(metadata.UploadLeaser); ok && l.SharedUploads() {
		return nil, nil
	}
	return newUploadIDs(key), ended
}

// Algorithms as a signed id encodes them.
var idAlgorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// uploadIDs issues and verifies signed upload ids.
type uploadIDs struct {
	key []byte
}

// newUploadIDs derives the ids' own key from the registry's secret key,
// so that a MAC made here means nothing to the key's other users.
func newUploadIDs(secret []byte) *uploadIDs {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("wharf upload session ids v1"))
	return &uploadIDs{key: m.Sum(nil)}
}

// issue returns a new id for a session of repo hashed with alg, started at
// started.
func (u *uploadIDs) issue(repo string, alg digest.Algorithm, started time.Time) string {
	var b [signedIDBytes]byte
	for i, a := range idAlgorithms {
		if a == alg {
			b[0] = byte(i)
		}
	}
	_, _ = rand.Read(b[1:12])
	binary.BigEndian.PutUint64(b[12:20], uint64(started.UnixNano()))
	copy(b[20:], u.mac(repo, b[:20]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// verify reports whether id was issued for repo, and if so the session's
// algorithm and start time.
func (u *uploadIDs) verify(repo, id string) (digest.Algorithm, time.Time, bool) {
	if u == nil || len(id) != signedIDLen {
		return "", time.Time{}, false
	}
	var b [signedIDBytes]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(id)); err != nil || n != signedIDBytes {
		return "", time.Time{}, false
	}
	if !hmac.Equal(b[20:], u.mac(repo, b[:20])) || int(b[0]) >= len(idAlgorithms) {
		return "", time.Time{}, false
	}
	started := time.Unix(0, int64(binary.BigEndian.Uint64(b[12:20]))).UTC()
	return idAlgorithms[b[0]], started, true
}

func (u *uploadIDs) mac(repo string, head []byte) []byte {
	m := hmac.New(sha256.New, u.key)
	m.Write(head)
	m.Write([]byte(repo))
	return m.Sum(nil)[:idMACBytes]
}

// unrecordedUpload returns session id of repo as its signed id describes
// it, when the session has no row: opened by a POST, not written since.
// Anything else without a row is no session.
func (s *Service) unrecordedUpload(ctx context.Context, repo, id string) (*metadata.Upload, error) {
	alg, started, ok := s.ids.verify(repo, id)
	if !ok || s.opts.UploadMaxAge > 0 && started.Before(s.opts.Now().Add(-s.opts.UploadMaxAge)) {
		return nil, uploadUnknown(id)
	}
	ended, err := s.ended.UploadEnded(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	if ended {
		return nil, uploadUnknown(id)
	}
	return &metadata.Upload{ID: id, Repo: repo, Algorithm: alg, StartedAt: started, UpdatedAt: started}, nil
}

// unrecorded reports whether session u is one that unrecordedUpload
// returned and nothing has been written to yet: it has no row, no bytes
// in the blob store, and no hash state.
func unrecorded(u *metadata.Upload) bool { return u.HashState == nil }

// startStored makes the blob store's upload for unrecorded session u,
// before its first bytes.
func (s *Service) startStored(ctx context.Context, u *metadata.Upload) error {
	stored, err := s.blobs.StartUpload(ctx, u.ID)
	if err != nil {
		// An earlier attempt on this id made the upload and then failed
		// (a PUT whose digest did not match, or a crash): the session has
		// no bytes, so its upload must not have any either.
		if cerr := s.blobs.CancelUpload(ctx, u.ID, nil); cerr == nil {
			stored, err = s.blobs.StartUpload(ctx, u.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("start upload: %w", err)
	}
	u.StoreState = stored
	return nil
}

// endSession ends session id of repo: a signed id is recorded as ended,
// with its row removed if it has one, so that it never starts a session
// again; another id just loses its row (ErrNotFound if it had none).
func (s *Service) endSession(ctx context.Context, repo, id string) error {
	if _, started, ok := s.ids.verify(repo, id); ok {
		return s.ended.EndUpload(ctx, repo, id, started)
	}
	return s.meta.DeleteUpload(ctx, repo, id)
}

// forgetEndedUploads drops the ended records of sessions whose ids have
// expired by cutoff (the janitor's): an expired id is refused anyway.
func (s *Service) forgetEndedUploads(ctx context.Context, cutoff time.Time) (int, error) {
	if s.ended == nil || s.opts.UploadMaxAge <= 0 {
		return 0, nil
	}
	if c := s.opts.Now().Add(-s.opts.UploadMaxAge); c.Before(cutoff) {
		cutoff = c
	}
	return s.ended.ForgetEndedUploads(ctx, cutoff)
}
