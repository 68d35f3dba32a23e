package client

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/wharf/wharf/internal/client/store"
)

// ListOptions are `image ls` flags.
type ListOptions struct {
	// Filters are docker's "key=value" pairs: reference=PATTERN,
	// dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE,
	// until=TIMESTAMP (see imageFilter for how they combine).
	Filters []string
	// Repository is the optional REPOSITORY[:TAG] argument.
	Repository string
	Digests    bool
	Quiet      bool
	NoTrunc    bool
	Format     string
	// Now is the clock for the CREATED column; time.Now when nil.
	Now func() time.Time
}

// imageRow holds docker's `image ls` template fields.
type imageRow struct {
	Repository, Tag, ID, Digest, CreatedSince, CreatedAt, Size string
	Containers, SharedSize, UniqueSize, VirtualSize            string
}

var imageHeader = imageRow{
	Repository: "REPOSITORY", Tag: "TAG", ID: "IMAGE ID", Digest: "DIGEST",
	CreatedSince: "CREATED", CreatedAt: "CREATED AT", Size: "SIZE",
	Containers: "CONTAINERS", SharedSize: "SHARED SIZE", UniqueSize: "UNIQUE SIZE", VirtualSize: "VIRTUAL SIZE",
}

// ImageList writes `image ls` output: docker's table, IDs with -q, or the
// --format template.
func ImageList(ctx context.Context, st *store.Store, opts ListOptions, w io.Writer) error {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	filters := opts.Filters
	if opts.Repository != "" {
		// docker turns the REPOSITORY[:TAG] argument into one more
		// reference filter, OR'd with the others.
		filters = append(slices.Clone(filters), "reference="+opts.Repository)
	}
	filter, err := parseImageFilter(ctx, st, filters, now())
	if err != nil {
		return err
	}
	entries, err := st.Images(ctx)
	if err != nil {
		return err
	}
	var rows []imageRow
	seen := map[string]bool{}
	for _, e := range entries {
		ok, err := filter.match(e)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		row := imageRow{Repository: "<none>", Tag: "<none>", Digest: "<none>",
			ID: e.ID.String(), Size: humanSize(e.Size),
			CreatedSince: createdSince(e.Created, now()),
			CreatedAt:    e.Created.In(now().Location()).Truncate(time.Second).String(),
			Containers:   "N/A", SharedSize: "N/A", UniqueSize: "N/A", VirtualSize: humanSize(e.Size),
		}
		if e.Ref != nil {
			row.Repository = reference.FamiliarName(e.Ref)
			if t, ok := e.Ref.(reference.NamedTagged); ok {
				row.Tag = t.Tag()
			}
		}
		if e.RepoDigest != "" {
			name, dgst, _ := strings.Cut(e.RepoDigest, "@")
			row.Digest = dgst
			if e.Ref == nil {
				if n, err := reference.ParseNormalizedNamed(name); err == nil {
					row.Repository = reference.FamiliarName(n)
				}
			}
		}
		if !opts.NoTrunc {
			row.ID = shortID(row.ID)
		}
		if opts.Quiet {
			if seen[row.ID] {
				continue
			}
			seen[row.ID] = true
		}
		rows = append(rows, row)
	}
	format := opts.Format
	switch {
	case opts.Quiet:
		format = "{{.ID}}"
	case format == "" && opts.Digests:
		format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	case format == "" || format == "table":
		format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	return renderRows(w, format, imageHeader, rows)
}
