package metadatatest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// RunBulk runs the contract of metadata.Bulk. newStore must return a new,
// empty store that implements it, for each call.
func RunBulk(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	bulk := func(t *testing.T) bulkStore {
		t.Helper()
		s := newStore(t)
		b, ok := s.(metadata.Bulk)
		if !ok {
			t.Fatalf("%T does not implement metadata.Bulk", s)
		}
		return bulkStore{s, b}
	}
	tests := []struct {
		name string
		test func(t *testing.T, src, dst bulkStore)
	}{
		{"Bulk_CopiesEveryKindIntoAnEmptyStore", testBulkCopies},
		{"Bulk_LoadAgainChangesNothing", testBulkLoadAgain},
		{"Bulk_LoadKeepReportsDifferencesReplaceOverwrites", testBulkDiffer},
		{"Bulk_LoadCheckWritesNothing", testBulkCheck},
		{"Bulk_LoadRefusesRecordsOfMissingRepository", testBulkMissingRepo},
		{"Bulk_LoadRefusesUserNamedLikeOrganisation", testBulkNameClash},
		{"Bulk_DumpPagesInKeyOrder", testBulkPages},
		{"LinkedBlobs_ListsEachLinkedDigestOnce", testLinkedBlobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, bulk(t), bulk(t))
		})
	}
}

type bulkStore struct {
	metadata.Store
	metadata.Bulk
}

// Auth records are written through Load (the metadata.Store interface
// has no account methods); each is as internal/auth would store it.
var bulkAuth = map[metadata.Kind][]metadata.Record{
	metadata.KindUsers: {
		{Key: []string{"alice"}, Values: []any{"$argon2id$alice", true, int64(1_700_000_000_000_000_001)}},
		{Key: []string{"bob"}, Values: []any{"$argon2id$bob", false, int64(1_700_000_000_000_000_002)}},
	},
	metadata.KindOrgs:    {{Key: []string{"team"}, Values: []any{int64(1_700_000_000_000_000_003)}}},
	metadata.KindMembers: {{Key: []string{"team", "bob"}, Values: []any{"write"}}},
	metadata.KindTokens: {{Key: []string{"tok1"}, Values: []any{"bob", "pat", "ci", "repo:write", []byte{0, 1, 2, 255}, "",
		int64(1_700_000_000_000_000_004), int64(0), int64(1_700_000_000_000_000_005), int64(0)}}},
	metadata.KindSigningKeys: {{Key: []string{"key1"}, Values: []any{[]byte("-----BEGIN PRIVATE KEY-----"), int64(1_700_000_000_000_000_006), int64(0)}}},
	metadata.KindVisibility:  {{Key: []string{"team/app"}, Values: []any{"public"}}},
	metadata.KindPolicies:    {{Key: []string{"team/*", "floating-tags"}, Values: []any{"semver", "alice", int64(1_700_000_000_000_000_007)}}},
}

// fill stores a little of everything: blobs linked in two repositories,
// tagged manifests pushed by someone, an index, a referrer, a description,
// counted pulls and the account records.
func fill(t *testing.T, s bulkStore) {
	t.Helper()
	ctx := t.Context()
	for _, kind := range metadata.Kinds() {
		if recs, ok := bulkAuth[kind]; ok {
			if _, err := s.Load(ctx, kind, recs, metadata.LoadKeep); err != nil {
				t.Fatalf("Load(%s): %v", kind, err)
			}
		}
	}
	app := newManifest("team/app", "v1")
	app.PushedBy = "bob"
	for i, b := range app.Blobs {
		linkBlob(t, s, "team/app", b, int64(10+i))
		linkBlob(t, s, "alice/copy", b, int64(10+i))
	}
	app.Lineage = &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2,
		Base: metadata.BaseRef{Repo: "golden/base", Digest: digest.FromString("base"), Tags: []string{"1", "1.0"}, Layers: 1, Source: "layers"}}
	putManifest(t, s, app, "v1", "latest")
	putManifest(t, s, newManifest("alice/copy", "v1"))
	idx := &metadata.Manifest{Repo: "team/app", MediaType: mediaTypeIndex, Children: []digest.Digest{app.Digest}}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"digest":%q}]}`, mediaTypeIndex, app.Digest)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "multi")
	sig := newReferrer("team/app", "sig", app.Digest, "application/vnd.example.sig", map[string]string{"by": "ci"})
	sig.Blobs = nil
	putManifest(t, s, sig)
	if err := s.SetRepositoryDescription(ctx, "team/app", "the app", "# App\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPulls(ctx, []metadata.Pull{{Repo: "team/app", Tag: "v1", Count: 3, At: time.Unix(1_800_000_000, 0)}}); err != nil {
		t.Fatal(err)
	}
}

// copyAll copies every kind from src to dst in pages of n.
func copyAll(t *testing.T, src, dst metadata.Bulk, n int, mode metadata.LoadMode) map[metadata.Kind]metadata.LoadResult {
	t.Helper()
	out := map[metadata.Kind]metadata.LoadResult{}
	for _, kind := range metadata.Kinds() {
		var after []string
		var total metadata.LoadResult
		for {
			recs, err := src.Dump(t.Context(), kind, after, n)
			if err != nil {
				t.Fatalf("Dump(%s, %q, %d): %v", kind, after, n, err)
			}
			if len(recs) == 0 {
				break
			}
			res, err := dst.Load(t.Context(), kind, recs, mode)
			if err != nil {
				t.Fatalf("Load(%s): %v", kind, err)
			}
			total.Add(res)
			after = recs[len(recs)-1].Key
		}
		out[kind] = total
	}
	return out
}

// dumpAll returns every record of kind.
func dumpAll(t *testing.T, s metadata.Bulk, kind metadata.Kind) []metadata.Record {
	t.Helper()
	recs, err := s.Dump(t.Context(), kind, nil, 1_000_000)
	if err != nil {
		t.Fatalf("Dump(%s): %v", kind, err)
	}
	return recs
}

func wantSameRecords(t *testing.T, src, dst metadata.Bulk) {
	t.Helper()
	for _, kind := range metadata.Kinds() {
		a, b := dumpAll(t, src, kind), dumpAll(t, dst, kind)
		if len(a) == 0 {
			t.Errorf("source has no %s: the test fills too little", kind)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differ:\nsource      %v\ndestination %v", kind, a, b)
		}
	}
}

func testBulkCopies(t *testing.T, src, dst bulkStore) {
	fill(t, src)
	res := copyAll(t, src, dst, 2, metadata.LoadKeep)
	for kind, r := range res {
		if r.Added == 0 || r.Same != 0 || r.Replaced != 0 || len(r.Differ) != 0 {
			t.Errorf("copy of %s = %+v; want only added records", kind, r)
		}
	}
	wantSameRecords(t, src, dst)

	// What the API reads is the same too, times and pushers included.
	ctx := t.Context()
	for _, tag := range []string{"v1", "latest", "multi"} {
		a, errA := src.GetTagInfo(ctx, "team/app", tag)
		b, errB := dst.GetTagInfo(ctx, "team/app", tag)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("GetTagInfo(team/app, %s): source %+v, %v; destination %+v, %v", tag, a, errA, b, errB)
		}
	}
	if b, err := dst.GetTagInfo(ctx, "team/app", "v1"); err != nil || b.PushedBy != "bob" || b.LastPulled.IsZero() {
		t.Errorf("destination tag v1 = %+v, %v; want pushed by bob and pulled", b, err)
	}
	a, errA := src.GetRepositoryInfo(ctx, "team/app")
	b, errB := dst.GetRepositoryInfo(ctx, "team/app")
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) || b.PullCount != 3 || b.Readme != "# App\n" {
		t.Errorf("GetRepositoryInfo: source %+v, %v; destination %+v, %v", a, errA, b, errB)
	}
	for _, m := range dumpAll(t, src, metadata.KindManifests) {
		wantGetManifestEqual(t, src, dst, m.Key[0], digest.Digest(m.Key[1]))
	}
	app := newManifest("team/app", "v1")
	ra, errA := src.Referrers(ctx, "team/app", app.Digest, "")
	rb, errB := dst.Referrers(ctx, "team/app", app.Digest, "")
	if errA != nil || errB != nil || len(rb) != 1 || !reflect.DeepEqual(ra, rb) {
		t.Errorf("Referrers: source %+v, %v; destination %+v, %v", ra, errA, rb, errB)
	}
	sa, errA := src.Stats(ctx)
	sb, errB := dst.Stats(ctx)
	if errA != nil || errB != nil || sa != sb || sb.Blobs != 2 {
		t.Errorf("Stats: source %+v, %v; destination %+v, %v", sa, errA, sb, errB)
	}
	// The copied index still requires its child: deleting nothing, a
	// second push of it by the API is accepted as the same manifest.
	idx := dumpAll(t, dst, metadata.KindManifestRefs)
	if !slices.ContainsFunc(idx, func(r metadata.Record) bool { return r.Key[2] == "manifest" && r.Key[3] == app.Digest.String() }) {
		t.Errorf("manifest references at the destination %v lack the index's child %s", idx, app.Digest)
	}
}

func wantGetManifestEqual(t *testing.T, src, dst metadata.Store, repo string, d digest.Digest) {
	t.Helper()
	a, errA := src.GetManifest(t.Context(), repo, d)
	b, errB := dst.GetManifest(t.Context(), repo, d)
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("GetManifest(%s, %s): source %+v, %v; destination %+v, %v", repo, d, a, errA, b, errB)
	}
}

func testBulkLoadAgain(t *testing.T, src, dst bulkStore) {
	fill(t, src)
	copyAll(t, src, dst, 3, metadata.LoadKeep)
	before, err := dst.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []metadata.LoadMode{metadata.LoadKeep, metadata.LoadReplace, metadata.LoadCheck} {
		for kind, r := range copyAll(t, src, dst, 3, mode) {
			if r.Same == 0 || r.Added != 0 || r.Replaced != 0 || len(r.Differ) != 0 {
				t.Errorf("mode %d: second load of %s = %+v; want every record the same", mode, kind, r)
			}
		}
	}
	after, err := dst.Stats(t.Context())
	if err != nil || after != before {
		t.Errorf("Stats after loading again = %+v, %v; want %+v (links counted once)", after, err, before)
	}
	wantSameRecords(t, src, dst)
}

func testBulkDiffer(t *testing.T, src, dst bulkStore) {
	fill(t, src)
	copyAll(t, src, dst, 100, metadata.LoadKeep)
	// The destination moves a tag and changes a role.
	other := newManifest("team/app", "other")
	other.Blobs = nil
	putManifest(t, dst, other, "latest")
	if _, err := dst.Load(t.Context(), metadata.KindMembers,
		[]metadata.Record{{Key: []string{"team", "bob"}, Values: []any{"admin"}}}, metadata.LoadReplace); err != nil {
		t.Fatal(err)
	}
	// A read renews a link's date: a lease, not data, so no difference.
	app := newManifest("team/app", "v1")
	linkBlob(t, dst, "team/app", app.Blobs[0], 10)
	for _, mode := range []metadata.LoadMode{metadata.LoadCheck, metadata.LoadKeep} {
		res := copyAll(t, src, dst, 100, mode)
		if r := res[metadata.KindBlobLinks]; len(r.Differ) != 0 || r.Same != 4 {
			t.Errorf("mode %d: blob links = %+v; want the renewed link the same", mode, r)
		}
		if d := res[metadata.KindTags].Differ; !reflect.DeepEqual(d, [][]string{{"team/app", "latest"}}) {
			t.Errorf("mode %d: tags differing = %q; want team/app latest", mode, d)
		}
		if d := res[metadata.KindMembers].Differ; !reflect.DeepEqual(d, [][]string{{"team", "bob"}}) {
			t.Errorf("mode %d: memberships differing = %q; want team bob", mode, d)
		}
		if m, err := dst.GetTaggedManifest(t.Context(), "team/app", "latest"); err != nil || m.Digest != other.Digest {
			t.Errorf("mode %d left latest at %v, %v; want it kept at %s", mode, m, err, other.Digest)
		}
	}
	res := copyAll(t, src, dst, 100, metadata.LoadReplace)
	if r := res[metadata.KindTags]; r.Replaced != 1 || len(r.Differ) != 0 {
		t.Errorf("LoadReplace of tags = %+v; want one replaced", r)
	}
	if r := res[metadata.KindMembers]; r.Replaced != 1 {
		t.Errorf("LoadReplace of memberships = %+v; want one replaced", r)
	}
	if r := res[metadata.KindManifests]; r.Replaced != 0 || len(r.Differ) != 0 {
		t.Errorf("LoadReplace of manifests = %+v; the extra one at the destination is not the source's business", r)
	}
	for _, kind := range []metadata.Kind{metadata.KindTags, metadata.KindMembers} {
		if a, b := dumpAll(t, src, kind), dumpAll(t, dst, kind); !reflect.DeepEqual(a, b) {
			t.Errorf("%s after LoadReplace:\nsource      %v\ndestination %v", kind, a, b)
		}
	}
}

func testBulkCheck(t *testing.T, src, dst bulkStore) {
	fill(t, src)
	// Into an empty store: every record missing, none written.
	for _, kind := range metadata.Kinds() {
		recs := dumpAll(t, src, kind)
		r, err := dst.Load(t.Context(), kind, recs, metadata.LoadCheck)
		if err != nil || r.Added != len(recs) || r.Same != 0 {
			t.Errorf("LoadCheck(%s) into an empty store = %+v, %v; want %d missing", kind, r, err, len(recs))
		}
		if got := dumpAll(t, dst, kind); len(got) != 0 {
			t.Errorf("LoadCheck(%s) wrote %v", kind, got)
		}
	}
	copyAll(t, src, dst, 100, metadata.LoadKeep)
	if err := dst.DeleteRepository(t.Context(), "alice/copy"); err != nil {
		t.Fatal(err)
	}
	recs := dumpAll(t, src, metadata.KindRepositories)
	r, err := dst.Load(t.Context(), metadata.KindRepositories, recs, metadata.LoadCheck)
	if err != nil || r.Added != 1 || r.Same != len(recs)-1 {
		t.Errorf("LoadCheck(repositories) after a delete = %+v, %v; want 1 missing", r, err)
	}
	wantRepoExists(t, dst, "alice/copy", false)
}

func testBulkMissingRepo(t *testing.T, src, dst bulkStore) {
	fill(t, src)
	recs := dumpAll(t, src, metadata.KindBlobLinks)
	if _, err := dst.Load(t.Context(), metadata.KindBlobLinks, recs, metadata.LoadKeep); err == nil {
		t.Error("Load(blob links) without their repositories succeeded; want an error")
	}
	if _, err := dst.Load(t.Context(), metadata.KindTags, []metadata.Record{{Key: []string{"x"}, Values: []any{"y"}}}, metadata.LoadKeep); err == nil {
		t.Error("Load of a record of the wrong shape succeeded; want an error")
	}
	if _, err := dst.Dump(t.Context(), metadata.Kind("uploads"), nil, 10); err == nil {
		t.Error("Dump(uploads) succeeded; upload sessions are not durable records")
	}
	wantRepos(t, dst)
}

func testBulkNameClash(t *testing.T, src, dst bulkStore) {
	org := []metadata.Record{{Key: []string{"alice"}, Values: []any{int64(1)}}}
	if _, err := dst.Load(t.Context(), metadata.KindOrgs, org, metadata.LoadKeep); err != nil {
		t.Fatal(err)
	}
	for i, mode := range []metadata.LoadMode{metadata.LoadKeep, metadata.LoadReplace} {
		r, err := dst.Load(t.Context(), metadata.KindUsers, bulkAuth[metadata.KindUsers], mode)
		if err != nil || r.Added+r.Same != 1 || r.Added != 1-i || !reflect.DeepEqual(r.Differ, [][]string{{"alice"}}) {
			t.Errorf("mode %d: Load(users) where an organisation is called alice = %+v, %v; want bob added once, alice differing", mode, r, err)
		}
	}
	if got := dumpAll(t, dst, metadata.KindUsers); len(got) != 1 || got[0].Key[0] != "bob" {
		t.Errorf("users = %v; want only bob", got)
	}
}

func testBulkPages(t *testing.T, src, _ bulkStore) {
	fill(t, src)
	for _, kind := range metadata.Kinds() {
		all := dumpAll(t, src, kind)
		keys := make([]string, len(all))
		for i, r := range all {
			keys[i] = strings.Join(r.Key, "\x00")
		}
		if !slices.IsSorted(keys) {
			t.Errorf("Dump(%s) keys %q not in order", kind, keys)
		}
		var paged []metadata.Record
		var after []string
		for {
			recs, err := src.Dump(t.Context(), kind, after, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			paged = append(paged, recs...)
			after = recs[0].Key
		}
		if !reflect.DeepEqual(paged, all) {
			t.Errorf("Dump(%s) page by page = %v; want %v", kind, paged, all)
		}
	}
}

func testLinkedBlobs(t *testing.T, src, _ bulkStore) {
	a, b, c := blobDigest("a"), blobDigest("b"), blobDigest("c")
	linkBlob(t, src, "r1", a, 1)
	linkBlob(t, src, "r2", a, 1)
	linkBlob(t, src, "r2", b, 22)
	linkBlob(t, src, "r3", c, 333)
	want := []metadata.BlobRef{{Digest: a, Size: 1}, {Digest: b, Size: 22}, {Digest: c, Size: 333}}
	slices.SortFunc(want, func(x, y metadata.BlobRef) int { return strings.Compare(string(x.Digest), string(y.Digest)) })
	var got []metadata.BlobRef
	var after digest.Digest
	for {
		page, err := src.LinkedBlobs(t.Context(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Digest
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LinkedBlobs = %v; want %v", got, want)
	}
}
