package migrate_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/migrate"
	"github.com/wharf/wharf/internal/server"
	"github.com/wharf/wharf/internal/servicetest"
)

// end is one end of a migration, opened as `wharf migrate` opens it.
type end struct {
	name string
	cfg  config.Config
	migrate.Stores
}

// embedded opens SQLite and a blob directory in a new data directory.
func embedded(t *testing.T, name string) end {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	return open(t, name, cfg)
}

// shared opens a new PostgreSQL database and a new versitygw bucket
// (with 5 MiB parts, so that a larger blob takes a multipart upload).
func shared(t *testing.T, name string) end {
	t.Helper()
	s3 := servicetest.StartS3(t)
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), name)
	cfg.Database.URL = servicetest.StartPostgres(t).Database(t)
	cfg.Storage.URL = s3.URL(s3.Bucket(t), "wharf") + "&part_size=5242880"
	cfg.Storage.S3.AccessKey, cfg.Storage.S3.SecretKey = s3.AccessKey, s3.SecretKey
	return open(t, name, cfg)
}

func open(t *testing.T, name string, cfg config.Config) end {
	t.Helper()
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := server.OpenStores(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return end{name: name, cfg: cfg, Stores: migrate.Stores{Meta: s.Meta, Blobs: s.Blobs}}
}

func (e end) bulk() metadata.Bulk { return e.Meta.(metadata.Bulk) }
func (e end) auth() auth.Store    { return e.Meta.(auth.Store) }

// putBlob stores content as a blob and links it to repo.
func putBlob(t *testing.T, e end, repo string, content []byte) digest.Digest {
	t.Helper()
	ctx := t.Context()
	d := digest.FromBytes(content)
	id := uuid.NewString()
	state, err := e.Blobs.StartUpload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.Blobs.WriteUpload(ctx, id, 0, state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Blobs.CommitUpload(ctx, id, w.State(), d, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if err := e.Meta.LinkBlob(ctx, repo, d, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return d
}

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// putImage stores an image of a config and layers in repo, tagged, as
// pushed by pusher, and returns its manifest.
func putImage(t *testing.T, e end, repo, pusher string, tags []string, layers ...[]byte) *metadata.Manifest {
	t.Helper()
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","created":%q}`, rand.Text())
	cd := putBlob(t, e, repo, cfg)
	m := &metadata.Manifest{Repo: repo, MediaType: mtManifest, ArtifactType: mtConfig, PushedBy: pusher, Blobs: []digest.Digest{cd}}
	var ls bytes.Buffer
	for i, l := range layers {
		ld := putBlob(t, e, repo, l)
		m.Blobs = append(m.Blobs, ld)
		if i > 0 {
			ls.WriteString(",")
		}
		fmt.Fprintf(&ls, `{"mediaType":%q,"digest":%q,"size":%d}`, mtLayer, ld, len(l))
	}
	// Spaces and key order a re-encoding would lose: copies must be byte
	// for byte.
	m.Content = fmt.Appendf(nil, `{ "schemaVersion": 2, "mediaType": %q,
  "config": {"mediaType":%q,"digest":%q,"size":%d}, "layers": [%s] }`, mtManifest, mtConfig, cd, len(cfg), ls.String())
	m.Digest = digest.FromBytes(m.Content)
	m.RequiredBlobs = m.Blobs
	if err := e.Meta.PutManifest(t.Context(), m, tags); err != nil {
		t.Fatal(err)
	}
	return m
}

// fillSource stores a little of everything an installation holds.
func fillSource(t *testing.T, e end) {
	t.Helper()
	ctx := t.Context()
	a := e.auth()
	now := time.Unix(1_760_000_000, 123456789).UTC()
	for _, u := range []*auth.User{
		{Name: "alice", PasswordHash: "$argon2id$v=19$alice", Admin: true, CreatedAt: now},
		{Name: "bob", PasswordHash: "$argon2id$v=19$bob", CreatedAt: now.Add(time.Second)},
	} {
		if err := a.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.CreateOrg(ctx, &auth.Org{Name: "team", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetMember(ctx, auth.Member{Org: "team", User: "bob", Role: auth.RoleWrite}); err != nil {
		t.Fatal(err)
	}
	tok := &auth.Token{ID: "tok-1", User: "bob", Kind: auth.KindPAT, Name: "ci", Scope: auth.ScopeReadWrite,
		Hash: []byte{1, 2, 3, 0, 255}, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := a.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := a.TouchToken(ctx, "tok-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSigningKey(ctx, &auth.SigningKey{ID: "key-1", PrivateKey: []byte("-----BEGIN EC PRIVATE KEY-----\n…"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetVisibility(ctx, "team/app", auth.Public); err != nil {
		t.Fatal(err)
	}
	if err := e.Meta.(metadata.PolicyStore).SetPolicies(ctx, []metadata.Policy{{Pattern: "team/*", Key: "floating-tags", Value: "semver", SetBy: "alice"}}); err != nil {
		t.Fatal(err)
	}

	big := make([]byte, 11<<20+12345) // three 5 MiB parts on S3
	rand.Read(big)
	app := putImage(t, e, "team/app", "bob", []string{"v1", "latest"}, []byte("layer one"), big)
	arm := putImage(t, e, "team/app", "alice", nil, []byte("arm layer"))
	idx := &metadata.Manifest{Repo: "team/app", MediaType: mtIndex, PushedBy: "alice", Children: []digest.Digest{app.Digest, arm.Digest}, RequireChildren: true}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d},{"mediaType":%q,"digest":%q,"size":%d}]}`,
		mtIndex, mtManifest, app.Digest, len(app.Content), mtManifest, arm.Digest, len(arm.Content))
	idx.Digest = digest.FromBytes(idx.Content)
	if err := e.Meta.PutManifest(ctx, idx, []string{"multi"}); err != nil {
		t.Fatal(err)
	}
	sigBlob := putBlob(t, e, "team/app", []byte("signature"))
	sig := &metadata.Manifest{Repo: "team/app", MediaType: mtManifest, ArtifactType: "application/vnd.example.sig",
		Subject: app.Digest, Annotations: map[string]string{"org.example.signer": "ci"}, Blobs: []digest.Digest{sigBlob}}
	sig.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":9},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"org.example.signer":"ci"}}`,
		mtManifest, sigBlob, mtManifest, app.Digest, len(app.Content))
	sig.Digest = digest.FromBytes(sig.Content)
	if err := e.Meta.PutManifest(ctx, sig, nil); err != nil {
		t.Fatal(err)
	}
	// A small blob kept in its record, as a monolithic push keeps one:
	// the destination gets it in its blob store.
	small := []byte(`{"small":"config"}`)
	if err := e.Meta.(metadata.SmallBlobs).PutSmallBlob(ctx, "team/app", digest.FromBytes(small), small, metadata.UploadEnd{}); err != nil {
		t.Fatal(err)
	}
	// The same layer in a second repository: one blob, two links.
	tools := putImage(t, e, "alice/tools", "alice", []string{"1.0"}, []byte("layer one"))
	// Lineage: alice/tools is golden and team/app is built on it.
	ls := e.Meta.(metadata.LineageStore)
	if err := ls.PutLineage(ctx, &metadata.Lineage{Repo: "alice/tools", Digest: tools.Digest, Chain: "chain-1", First: "chain-1", Layers: 1, Golden: true}); err != nil {
		t.Fatal(err)
	}
	if err := ls.PutLineage(ctx, &metadata.Lineage{Repo: "team/app", Digest: app.Digest, Chain: "chain-2", First: "chain-1", Layers: 2,
		Base: metadata.BaseRef{Repo: "alice/tools", Digest: tools.Digest, Tags: []string{"1.0"}, Layers: 1, Source: "layers"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Meta.SetRepositoryDescription(ctx, "team/app", "The app", "# The app\n\nRuns."); err != nil {
		t.Fatal(err)
	}
	if err := e.Meta.AddPulls(ctx, []metadata.Pull{{Repo: "team/app", Tag: "v1", Count: 7, At: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	// An upload in progress, which is not copied.
	if err := e.Meta.CreateUpload(ctx, &metadata.Upload{ID: uuid.NewString(), Repo: "team/app", Algorithm: digest.SHA256,
		HashState: []byte("state"), StartedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// wantSame checks that b holds everything a holds: every record of every
// kind, equal, and every linked blob's bytes.
func wantSame(t *testing.T, a, b end) {
	t.Helper()
	ctx := t.Context()
	for _, kind := range metadata.Kinds() {
		ra, err := a.bulk().Dump(ctx, kind, nil, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.bulk().Dump(ctx, kind, nil, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ra) == 0 {
			t.Errorf("%s has no %s: the test stores too little", a.name, kind)
		}
		if !reflect.DeepEqual(ra, rb) {
			t.Errorf("%s differ:\n%s: %v\n%s: %v", kind, a.name, ra, b.name, rb)
		}
	}
	blobs, err := a.bulk().LinkedBlobs(ctx, "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, bl := range blobs {
		if got := readBlob(t, b, bl.Digest); digest.FromBytes(got) != bl.Digest {
			t.Errorf("%s: blob %s has other bytes", b.name, bl.Digest)
		}
	}
	// And what the services read: tags with their pushers and times,
	// manifests byte for byte, referrers, stats, accounts.
	for _, tag := range []string{"v1", "latest", "multi"} {
		ta, errA := a.Meta.GetTagInfo(ctx, "team/app", tag)
		tb, errB := b.Meta.GetTagInfo(ctx, "team/app", tag)
		if errA != nil || errB != nil || !reflect.DeepEqual(ta, tb) || tb.PushedBy == "" {
			t.Errorf("tag %s: %s %+v, %v; %s %+v, %v", tag, a.name, ta, errA, b.name, tb, errB)
		}
	}
	sa, _ := a.Meta.Stats(ctx)
	sb, _ := b.Meta.Stats(ctx)
	if sa != sb {
		t.Errorf("Stats: %s %+v, %s %+v", a.name, sa, b.name, sb)
	}
	ua, _ := a.auth().ListUsers(ctx)
	ub, _ := b.auth().ListUsers(ctx)
	if !reflect.DeepEqual(ua, ub) || len(ub) != 2 {
		t.Errorf("users: %s %+v, %s %+v", a.name, ua, b.name, ub)
	}
	ka, _ := a.auth().ListSigningKeys(ctx)
	kb, _ := b.auth().ListSigningKeys(ctx)
	if !reflect.DeepEqual(ka, kb) || len(kb) != 1 {
		t.Errorf("signing keys: %s %+v, %s %+v", a.name, ka, b.name, kb)
	}
	if ps, err := b.Meta.(metadata.PolicyStore).ListPolicies(ctx, ""); err != nil || len(ps) != 1 || ps[0].Pattern != "team/*" || ps[0].SetBy != "alice" {
		t.Errorf("%s: policies = %+v, %v; want team/* floating-tags set by alice", b.name, ps, err)
	}
	if v, err := b.auth().GetVisibility(ctx, "team/app"); err != nil || v != auth.Public {
		t.Errorf("%s: visibility of team/app = %q, %v; want public", b.name, v, err)
	}
	if r, err := b.auth().MemberRole(ctx, "team", "bob"); err != nil || r != auth.RoleWrite {
		t.Errorf("%s: bob's role in team = %q, %v; want write", b.name, r, err)
	}
	tok, err := b.auth().GetTokenByHash(ctx, []byte{1, 2, 3, 0, 255})
	if err != nil || tok.ID != "tok-1" || tok.LastUsed.IsZero() {
		t.Errorf("%s: token = %+v, %v; want tok-1, used", b.name, tok, err)
	}
	info, err := b.Meta.GetRepositoryInfo(ctx, "team/app")
	if err != nil || info.PullCount != 7 || info.Readme != "# The app\n\nRuns." {
		t.Errorf("%s: team/app = %+v, %v; want 7 pulls and the readme", b.name, info, err)
	}
}

func readBlob(t *testing.T, e end, d digest.Digest) []byte {
	t.Helper()
	r, _, err := e.Blobs.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("%s: open blob %s: %v", e.name, d, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run migrates and returns the report and the transcript.
func run(t *testing.T, ctx context.Context, from, to end, opts migrate.Options) (migrate.Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	opts.Progress = &out
	rep, err := migrate.Run(ctx, from.Stores, to.Stores, opts)
	t.Logf("migrate %s → %s (verify %v, replace %v): %v\n%s", from.name, to.name, opts.Verify, opts.Replace, err, out.String())
	return rep, out.String(), err
}

// cancelAfterCommits cancels a migration once n blobs are committed at
// the destination: an interruption at a known point, without timing.
// Commits after the nth are refused as cancelled, so copies that were
// running side by side cannot all land before the cancellation is seen;
// the first n commit whatever the context, so one that is still writing
// when the nth cancels does not fail with it.
type cancelAfterCommits struct {
	blobstore.Store
	n      atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfterCommits) CommitUpload(ctx context.Context, id string, st blobstore.State, d digest.Digest, size int64) error {
	left := c.n.Add(-1)
	if left < 0 {
		return context.Canceled
	}
	err := c.Store.CommitUpload(context.WithoutCancel(ctx), id, st, d, size)
	if left == 0 {
		c.cancel()
	}
	return err
}

// cancelAfterLoads cancels a migration once n batches of records are
// written at the destination (checks do not count).
type cancelAfterLoads struct {
	metadata.Store
	metadata.Bulk
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfterLoads) Load(ctx context.Context, kind metadata.Kind, recs []metadata.Record, mode metadata.LoadMode) (metadata.LoadResult, error) {
	res, err := c.Bulk.Load(ctx, kind, recs, mode)
	if mode != metadata.LoadCheck {
		if c.n--; c.n == 0 {
			c.cancel()
		}
	}
	return res, err
}

// failCommits fails the first n commits at the destination, as an object
// store now and then fails a request.
type failCommits struct {
	blobstore.Store
	n atomic.Int64
}

var errFlaky = errors.New("flaky store")

func (f *failCommits) CommitUpload(ctx context.Context, id string, st blobstore.State, d digest.Digest, size int64) error {
	if f.n.Add(-1) >= 0 {
		return errFlaky
	}
	return f.Store.CommitUpload(ctx, id, st, d, size)
}
