// Package migrate copies a wharf installation from one pair of stores to
// another (SQLite + directory ⇄ PostgreSQL + S3): every linked blob,
// streamed and checked against its digest, then every durable metadata
// record (accounts, repositories, links, manifests, references, tags) by
// name, with its times, pushers and pull counts. Run again, it finishes an
// interrupted copy: blobs at the destination with the right size and
// records already equal there are skipped.
//
// It works through the store interfaces only (metadata.Bulk,
// blobstore.Store), so any pair of drivers can be either end.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// Stores is one end of a migration.
type Stores struct {
	// Meta must implement metadata.Bulk.
	Meta  metadata.Store
	Blobs blobstore.Store
}

// Options tune a migration.
type Options struct {
	// Verify re-reads every blob at the destination (copied now or
	// before) and checks it against its digest; a corrupt one is copied
	// again from the source. It also checks afterwards that every record
	// of the source is at the destination, equal.
	Verify bool
	// Replace overwrites records the destination holds with other values
	// (a tag pointing elsewhere, another pull count). Without it such
	// records make the migration stop before it writes anything.
	Replace bool
	// Progress receives one line per step and per problem; nil is silent.
	Progress io.Writer
}

// Report counts what a migration did.
type Report struct {
	BlobsCopied   int
	BytesCopied   int64
	BlobsPresent  int // at the destination with the right size already
	BytesPresent  int64
	BlobsVerified int // re-hashed at the destination (Verify)
	BytesVerified int64
	// BlobsRepaired were corrupt or of the wrong size at the destination
	// and were copied again.
	BlobsRepaired int
	// Records counts, per kind, what loading the source's records did.
	Records map[metadata.Kind]metadata.LoadResult
	// RecordsVerified were found equal at the destination (Verify).
	RecordsVerified int
	// Uploads is how many upload sessions the source has in progress;
	// they are not copied (their bytes are in the source's upload area).
	Uploads int
	// Differ lists the records the destination holds with other values,
	// as "kind: key".
	Differ   []string
	Problems []string
}

// Errors Run returns, wrapped.
var (
	// ErrConflict means the destination holds other values for some of
	// the source's records; nothing was written (see Options.Replace).
	ErrConflict = errors.New("the destination holds different data under the same names")
	// ErrIncomplete means some of the source could not be copied or did
	// not verify; the report lists what.
	ErrIncomplete = errors.New("migration incomplete")
)

// Page sizes: manifests are up to a few MiB each, other records small.
const (
	blobPage     = 500
	recordPage   = 500
	manifestPage = 32
)

// Run copies everything from src to dst. A store that fails ends it at
// once with that error (run it again to resume); problems with single
// blobs are collected and make the result ErrIncomplete.
func Run(ctx context.Context, src, dst Stores, opts Options) (Report, error) {
	m := &migration{src: src, dst: dst, opts: opts, rep: Report{Records: map[metadata.Kind]metadata.LoadResult{}}}
	var ok bool
	if m.srcBulk, ok = src.Meta.(metadata.Bulk); !ok {
		return m.rep, fmt.Errorf("the source database (%T) cannot be exported", src.Meta)
	}
	if m.dstBulk, ok = dst.Meta.(metadata.Bulk); !ok {
		return m.rep, fmt.Errorf("the destination database (%T) cannot be imported into", dst.Meta)
	}
	if err := m.check(ctx); err != nil {
		return m.rep, err
	}
	if err := m.blobs(ctx); err != nil {
		return m.rep, err
	}
	if err := m.records(ctx); err != nil {
		return m.rep, err
	}
	if opts.Verify {
		if err := m.verifyRecords(ctx); err != nil {
			return m.rep, err
		}
	}
	if err := m.countUploads(ctx); err != nil {
		return m.rep, err
	}
	if len(m.rep.Problems) > 0 {
		return m.rep, fmt.Errorf("%w: %d problems", ErrIncomplete, len(m.rep.Problems))
	}
	return m.rep, nil
}

type migration struct {
	src, dst         Stores
	srcBulk, dstBulk metadata.Bulk
	opts             Options
	// mu guards rep and Progress while blob jobs run.
	mu  sync.Mutex
	rep Report
}

// progress writes a line; blob jobs hold mu.
func (m *migration) progress(format string, args ...any) {
	if m.opts.Progress != nil {
		fmt.Fprintf(m.opts.Progress, format+"\n", args...)
	}
}

func (m *migration) problem(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := fmt.Sprintf(format, args...)
	m.rep.Problems = append(m.rep.Problems, p)
	m.progress("problem: %s", p)
}

// say is progress from a blob job.
func (m *migration) say(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress(format, args...)
}

// eachRecord calls fn with the source's records of kind, page by page.
func (m *migration) eachRecord(ctx context.Context, kind metadata.Kind, fn func([]metadata.Record) error) error {
	n := recordPage
	if kind == metadata.KindManifests {
		n = manifestPage
	}
	var after []string
	for {
		recs, err := m.srcBulk.Dump(ctx, kind, after, n)
		if err != nil {
			return fmt.Errorf("read the source's %s: %w", kind, err)
		}
		if len(recs) == 0 {
			return nil
		}
		if err := fn(recs); err != nil {
			return err
		}
		after = recs[len(recs)-1].Key
	}
}

// check compares the source's records with the destination's before
// anything is written, so that a destination holding other data under
// the same names is refused whole, not half overwritten.
func (m *migration) check(ctx context.Context) error {
	start := time.Now()
	var total metadata.LoadResult
	for _, kind := range metadata.Kinds() {
		err := m.eachRecord(ctx, kind, func(recs []metadata.Record) error {
			res, err := m.dstBulk.Load(ctx, kind, recs, metadata.LoadCheck)
			if err != nil {
				return fmt.Errorf("compare %s with the destination: %w", kind, err)
			}
			for _, k := range res.Differ {
				m.rep.Differ = append(m.rep.Differ, string(kind)+": "+strings.Join(k, " "))
			}
			total.Add(res)
			return nil
		})
		if err != nil {
			return err
		}
	}
	records := total.Added + total.Same + len(total.Differ)
	m.progress("destination checked: %d records in the source, %d already there, %d to add, %d differ (%s)",
		records, total.Same, total.Added, len(total.Differ), time.Since(start).Round(time.Millisecond))
	if len(m.rep.Differ) == 0 {
		return nil
	}
	const shown = 20
	for i, d := range m.rep.Differ {
		if i == shown {
			m.progress("  … and %d more", len(m.rep.Differ)-shown)
			break
		}
		m.progress("  differs: %s", d)
	}
	if m.opts.Replace {
		m.progress("the source's values replace these (--replace)")
		return nil
	}
	return fmt.Errorf("%w: %d records (listed above); nothing was written: pass --replace to overwrite them with the source's", ErrConflict, len(m.rep.Differ))
}

// records loads every kind of record, in an order that puts what a
// record refers to first.
func (m *migration) records(ctx context.Context) error {
	start := time.Now()
	mode := metadata.LoadKeep
	if m.opts.Replace {
		mode = metadata.LoadReplace
	}
	for _, kind := range metadata.Kinds() {
		var total metadata.LoadResult
		err := m.eachRecord(ctx, kind, func(recs []metadata.Record) error {
			res, err := m.dstBulk.Load(ctx, kind, recs, mode)
			if err != nil {
				return fmt.Errorf("write %s: %w", kind, err)
			}
			total.Add(res)
			return nil
		})
		if err != nil {
			return err
		}
		m.rep.Records[kind] = total
		line := fmt.Sprintf("%s: %d added, %d already there", kind, total.Added, total.Same)
		if total.Replaced > 0 {
			line += fmt.Sprintf(", %d replaced", total.Replaced)
		}
		if len(total.Differ) > 0 {
			// Changed at the destination since the check.
			line += fmt.Sprintf(", %d differ", len(total.Differ))
			for _, k := range total.Differ {
				m.problem("%s %s changed at the destination during the migration; left as it is", kind, strings.Join(k, " "))
			}
		}
		m.progress("%s", line)
	}
	m.progress("records written (%s)", time.Since(start).Round(time.Millisecond))
	return nil
}

// verifyRecords checks that every record of the source is at the
// destination with the same values.
func (m *migration) verifyRecords(ctx context.Context) error {
	start := time.Now()
	for _, kind := range metadata.Kinds() {
		err := m.eachRecord(ctx, kind, func(recs []metadata.Record) error {
			res, err := m.dstBulk.Load(ctx, kind, recs, metadata.LoadCheck)
			if err != nil {
				return fmt.Errorf("verify %s: %w", kind, err)
			}
			m.rep.RecordsVerified += res.Same
			if res.Added > 0 {
				m.problem("verify: %d %s of the source are missing at the destination", res.Added, kind)
			}
			for _, k := range res.Differ {
				m.problem("verify: %s %s differs at the destination", kind, strings.Join(k, " "))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	m.progress("verify: %d records equal at the destination (%s)", m.rep.RecordsVerified, time.Since(start).Round(time.Millisecond))
	return nil
}

// countUploads counts the source's upload sessions, which are not copied:
// their bytes are in the source's upload area, and a client whose upload
// is gone starts it again.
func (m *migration) countUploads(ctx context.Context) error {
	const most = 100_000
	ups, err := m.src.Meta.StaleUploads(ctx, time.Now().Add(24*time.Hour), most)
	if err != nil {
		return fmt.Errorf("count the source's upload sessions: %w", err)
	}
	m.rep.Uploads = len(ups)
	if len(ups) > 0 {
		m.progress("not copied: %d upload sessions in progress at the source (clients start them again)", len(ups))
	}
	return nil
}

// RecordTotals sums the records added, found equal and replaced.
func (r Report) RecordTotals() (added, same, replaced int) {
	for _, lr := range r.Records {
		added, same, replaced = added+lr.Added, same+lr.Same, replaced+lr.Replaced
	}
	return added, same, replaced
}

// Counts lists how many records of each kind the source has, as in
// "2 users, …, 5 tags".
func (r Report) Counts() string {
	parts := make([]string, 0, len(r.Records))
	for _, kind := range metadata.Kinds() {
		lr, ok := r.Records[kind]
		if !ok {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s", lr.Added+lr.Same+lr.Replaced+len(lr.Differ), kind))
	}
	return strings.Join(parts, ", ")
}

// Size formats a byte count for people: a transcript of small images
// that says "0.0 MB" throughout says nothing.
func Size(n int64) string {
	switch {
	case n < 1e3:
		return fmt.Sprintf("%d B", n)
	case n < 1e6:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	}
}
