// Package metadatatest is the contract every metadata.Store implementation
// must pass. An implementation's tests call Run with a constructor for an
// empty store.
package metadatatest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// Run runs the contract suite. newStore must return a new, empty store for
// each call; it registers its own cleanup (Close) with t.
func Run(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store)
	}{
		{"RepositoryExists_UnknownIsFalse", testRepositoryExistsUnknown},
		{"RepositoryExists_MatchesWholeName", testRepositoryExistsWholeName},
		{"LinkBlob_CreatesRepository", testLinkBlobCreatesRepository},
		{"PutManifest_CreatesRepository", testPutManifestCreatesRepository},
		{"ListRepositories_EmptyStoreIsEmpty", testListRepositoriesEmpty},
		{"ListRepositories_ByteOrder", testListRepositoriesByteOrder},
		{"ListRepositories_PaginatesWithLastAndN", testListRepositoriesPaginates},

		{"LinkBlob_IsIdempotent", testLinkBlobIdempotent},
		{"BlobSize_ScopedToRepository", testBlobSizeScoped},
		{"BlobSize_UnknownRepositoryIsNotFound", testBlobSizeUnknownRepo},
		{"AnyBlobSize_FindsBlobInAnyRepository", testAnyBlobSize},
		{"BlobRepositories_ListsHoldersInByteOrder", testBlobRepositories},
		{"UnlinkBlob_RemovesOnlyThatLink", testUnlinkBlob},
		{"UnlinkBlob_MissingIsNotFound", testUnlinkBlobMissing},
		{"MissingBlobs_ReportsUnlinkedDigests", testMissingBlobs},
		{"Stats_CountsDistinctBlobsOnce", testStats},

		{"PutManifest_GetManifestRoundTrips", testPutGetManifest},
		{"PutManifest_IsIdempotent", testPutManifestIdempotent},
		{"PutManifest_PointsEveryTagAtManifest", testPutManifestTags},
		{"PutManifest_RetagMovesTag", testPutManifestRetag},
		{"GetManifest_ScopedToRepository", testGetManifestScoped},
		{"GetManifest_MissingIsNotFound", testGetManifestMissing},
		{"GetTaggedManifest_MissingIsNotFound", testGetTaggedManifestMissing},
		{"MissingManifests_ReportsAbsentDigests", testMissingManifests},
		{"DeleteTag_RemovesOnlyTheTag", testDeleteTag},
		{"DeleteTag_MissingIsNotFound", testDeleteTagMissing},
		{"DeleteManifest_RemovesManifestAndItsTags", testDeleteManifest},
		{"DeleteManifest_MissingIsNotFound", testDeleteManifestMissing},
		{"DeleteManifest_ThenPutAgain", testDeleteManifestPutAgain},
		{"ListTags_ByteOrder", testListTagsByteOrder},
		{"ListTags_PaginatesWithLastAndN", testListTagsPaginates},
		{"ListTags_UnknownRepositoryIsNotFound", testListTagsUnknownRepo},
		{"ListTags_RepositoryWithoutTagsIsEmpty", testListTagsNoTags},
		{"Referrers_ListsManifestsWithSubject", testReferrers},
		{"Referrers_FiltersByArtifactType", testReferrersFilter},
		{"Referrers_ScopedToRepository", testReferrersScoped},
		{"Referrers_NoneIsEmpty", testReferrersNone},

		{"CreateUpload_GetUploadRoundTrips", testUploadRoundTrip},
		{"CreateUpload_DuplicateIDFails", testUploadDuplicate},
		{"GetUpload_WrongRepositoryIsNotFound", testGetUploadWrongRepo},
		{"GetUpload_MissingIsNotFound", testGetUploadMissing},
		{"AdvanceUpload_MovesOffsetAndHashState", testAdvanceUpload},
		{"AdvanceUpload_StaleOffsetIsConflict", testAdvanceUploadConflict},
		{"Upload_StoreStateRoundTripsAndLosingAdvanceKeepsIt", testUploadStoreState},
		{"Upload_ContentRoundTripsAndAdvanceClearsIt", testUploadContent},
		{"AdvanceUpload_MissingIsNotFound", testAdvanceUploadMissing},
		{"DeleteUpload_RemovesSession", testDeleteUpload},
		{"DeleteUpload_MissingIsNotFound", testDeleteUploadMissing},
		{"StaleUploads_ListsSessionsNotWrittenSince", testStaleUploads},
		{"UploadExists_InAnyRepository", testUploadExists},
		{"UploadStoreState_InAnyRepository", testUploadStoreStateByID},
		{"FinishEndedUpload_LinksAndEndsAnUnrecordedSession", testFinishEndedUploadUnrecorded},
		{"EndUpload_RemovesTheSessionsRecord", testEndUploadRemovesRecord},
		{"ForgetEndedUploads_ByStartTime", testForgetEndedUploads},

		{"ClaimUpload_LeaseHeldUntilAdvanceEndsIt", testClaimUploadAdvance},
		{"ClaimUpload_LiveLeaseOfAnotherWriterIsConflict", testClaimUploadLiveLease},
		{"ClaimUpload_LapsedLeaseIsTakenAndFencesTheOldWriter", testClaimUploadLapsed},
		{"ClaimUpload_WrongOffsetIsConflict", testClaimUploadWrongOffset},
		{"ClaimUpload_MissingIsNotFound", testClaimUploadMissing},
		{"RenewUpload_MovesTheLeaseOut", testRenewUpload},
		{"ReleaseUpload_EndsOnlyItsOwnLease", testReleaseUpload},
		{"ClaimUpload_ConcurrentSameOffsetOneWins", testConcurrentClaimUpload},

		{"PutManifest_ConcurrentSameTag", testConcurrentPutSameTag},
		{"PutManifest_ConcurrentSameManifest", testConcurrentPutSameManifest},
		{"LinkBlob_ConcurrentSameBlob", testConcurrentLinkBlob},
		{"AdvanceUpload_ConcurrentSameOffsetOneWins", testConcurrentAdvanceUpload},
		{"ResolveTag_LookupsSeeEveryEarlierWrite", testTagLookupsSeeEveryEarlierWrite},

		{"Methods_CancelledContextFails", testCancelledContext},
		{"Ping_Succeeds", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

const (
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
)

// blobDigest returns a distinct, valid sha256 digest for name.
func blobDigest(name string) digest.Digest {
	return digest.FromString("blob " + name)
}

// newManifest returns an image manifest of repo whose content (and so
// digest) is unique for seed. It references two blobs.
func newManifest(repo, seed string) *metadata.Manifest {
	cfg, layer := blobDigest(seed+" config"), blobDigest(seed+" layer")
	content := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,`+
		`"config":{"mediaType":%q,"digest":%q,"size":2},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":3}],`+
		`"annotations":{"seed":%q}}`,
		mediaTypeManifest, mediaTypeConfig, cfg, layer, seed)
	return &metadata.Manifest{
		Repo:         repo,
		Digest:       digest.FromString(content),
		MediaType:    mediaTypeManifest,
		Content:      []byte(content),
		ArtifactType: mediaTypeConfig,
		Blobs:        []digest.Digest{cfg, layer},
	}
}

// newReferrer returns an artifact manifest of repo whose subject is subject.
func newReferrer(repo, seed string, subject digest.Digest, artifactType string, annotations map[string]string) *metadata.Manifest {
	m := newManifest(repo, seed)
	m.ArtifactType = artifactType
	m.Subject = subject
	m.Annotations = annotations
	return m
}

// newUploadID returns a fresh upload session id.
func newUploadID() string {
	return "upload-" + rand.Text()
}

func putManifest(t *testing.T, s metadata.Store, m *metadata.Manifest, tags ...string) {
	t.Helper()
	if err := s.PutManifest(t.Context(), m, tags); err != nil {
		t.Fatalf("PutManifest(%s %s, %q): %v", m.Repo, m.Digest, tags, err)
	}
}

func linkBlob(t *testing.T, s metadata.Store, repo string, d digest.Digest, size int64) {
	t.Helper()
	if err := s.LinkBlob(t.Context(), repo, d, size); err != nil {
		t.Fatalf("LinkBlob(%s, %s, %d): %v", repo, d, size, err)
	}
}

// wantErr checks that err matches the sentinel target.
func wantErr(t *testing.T, call string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s error = %v; want %v", call, err, target)
	}
}

func wantRepoExists(t *testing.T, s metadata.Store, repo string, want bool) {
	t.Helper()
	got, err := s.RepositoryExists(t.Context(), repo)
	if err != nil || got != want {
		t.Errorf("RepositoryExists(%q) = %v, %v; want %v, nil", repo, got, err, want)
	}
}

func wantRepos(t *testing.T, s metadata.Store, want ...string) {
	t.Helper()
	got, err := s.ListRepositories(t.Context(), "", 0)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListRepositories(\"\", 0) = %q, %v; want %q, nil", got, err, want)
	}
}

func wantTags(t *testing.T, s metadata.Store, repo string, want ...string) {
	t.Helper()
	got, err := s.ListTags(t.Context(), repo, "", 0)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ListTags(%q, \"\", 0) = %q, %v; want %q, nil", repo, got, err, want)
	}
}

func wantBlobSize(t *testing.T, s metadata.Store, repo string, d digest.Digest, want int64) {
	t.Helper()
	got, err := s.BlobSize(t.Context(), repo, d)
	if err != nil || got != want {
		t.Errorf("BlobSize(%s, %s) = %d, %v; want %d, nil", repo, d, got, err, want)
	}
}

func wantNoBlob(t *testing.T, s metadata.Store, repo string, d digest.Digest) {
	t.Helper()
	_, err := s.BlobSize(t.Context(), repo, d)
	wantErr(t, fmt.Sprintf("BlobSize(%s, %s)", repo, d), err, metadata.ErrNotFound)
}

// wantManifest checks that got is the stored form of want.
func wantManifest(t *testing.T, call string, got, want *metadata.Manifest) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s = nil manifest", call)
	}
	if got.Repo != want.Repo || got.Digest != want.Digest || got.MediaType != want.MediaType ||
		got.ArtifactType != want.ArtifactType || got.Subject != want.Subject {
		t.Errorf("%s = {Repo %q Digest %s MediaType %q ArtifactType %q Subject %q}; want {%q %s %q %q %q}",
			call, got.Repo, got.Digest, got.MediaType, got.ArtifactType, got.Subject,
			want.Repo, want.Digest, want.MediaType, want.ArtifactType, want.Subject)
	}
	if !bytes.Equal(got.Content, want.Content) {
		t.Errorf("%s content = %q; want %q", call, got.Content, want.Content)
	}
	if !maps.Equal(got.Annotations, want.Annotations) {
		t.Errorf("%s annotations = %v; want %v", call, got.Annotations, want.Annotations)
	}
	if got.CreatedAt.IsZero() {
		t.Errorf("%s CreatedAt is zero; want the time it was stored", call)
	}
}

func wantGetManifest(t *testing.T, s metadata.Store, want *metadata.Manifest) {
	t.Helper()
	call := fmt.Sprintf("GetManifest(%s, %s)", want.Repo, want.Digest)
	got, err := s.GetManifest(t.Context(), want.Repo, want.Digest)
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	wantManifest(t, call, got, want)
}

func wantTagged(t *testing.T, s metadata.Store, tag string, want *metadata.Manifest) {
	t.Helper()
	call := fmt.Sprintf("GetTaggedManifest(%s, %s)", want.Repo, tag)
	got, err := s.GetTaggedManifest(t.Context(), want.Repo, tag)
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	wantManifest(t, call, got, want)
}

func wantNoManifest(t *testing.T, s metadata.Store, repo string, d digest.Digest) {
	t.Helper()
	_, err := s.GetManifest(t.Context(), repo, d)
	wantErr(t, fmt.Sprintf("GetManifest(%s, %s)", repo, d), err, metadata.ErrNotFound)
}

func wantNoTag(t *testing.T, s metadata.Store, repo, tag string) {
	t.Helper()
	_, err := s.GetTaggedManifest(t.Context(), repo, tag)
	wantErr(t, fmt.Sprintf("GetTaggedManifest(%s, %s)", repo, tag), err, metadata.ErrNotFound)
}

// sortedDigests returns ds sorted, so sets can be compared.
func sortedDigests(ds []digest.Digest) []digest.Digest {
	return slices.Sorted(slices.Values(ds))
}
