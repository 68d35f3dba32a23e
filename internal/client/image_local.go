package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// ImageTag makes target refer to the image source names, like `docker tag`.
// A tag on a multi-platform index moves the whole index.
func ImageTag(ctx context.Context, st *store.Store, source, target string, w io.Writer) error {
	// Like docker's client, check the target before looking up the source.
	named, err := ref.Parse(target)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Canonical); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %s", target)
	}
	desc, err := st.Resolve(ctx, source)
	if err != nil {
		return err
	}
	return st.Tag(ctx, named, desc.Digest)
}

// RemoveOptions are `image rm` flags.
type RemoveOptions struct {
	Force bool
}

// ImageRemove removes each image as `docker rmi` does, printing the
// "Untagged:"/"Deleted:" lines. It goes on after an error and returns all
// errors joined.
func ImageRemove(ctx context.Context, st *store.Store, refs []string, opts RemoveOptions, w io.Writer) error {
	var errs []error
	for _, r := range refs {
		lines, err := st.Remove(ctx, r, opts.Force)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	return errors.Join(errs...)
}

// InspectOptions are `image inspect` flags.
type InspectOptions struct {
	// Format is a Go template applied to each image's JSON object.
	Format string
}

// imageInspect is docker's `image inspect` object (the fields wharf knows).
type imageInspect struct {
	ID            string     `json:"Id"`
	RepoTags      []string   `json:"RepoTags"`
	RepoDigests   []string   `json:"RepoDigests"`
	Parent        string     `json:"Parent"`
	Comment       string     `json:"Comment"`
	Created       string     `json:"Created,omitempty"`
	DockerVersion string     `json:"DockerVersion,omitempty"`
	Author        string     `json:"Author"`
	Config        v1.Config  `json:"Config"`
	Architecture  string     `json:"Architecture"`
	Variant       string     `json:"Variant,omitempty"`
	Os            string     `json:"Os"`
	OsVersion     string     `json:"OsVersion,omitempty"`
	Size          int64      `json:"Size"`
	RootFS        rootFS     `json:"RootFS"`
	Metadata      inspectMD  `json:"Metadata"`
	Descriptor    descriptor `json:"Descriptor"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

type inspectMD struct {
	LastTagTime string `json:"LastTagTime"`
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// ImageInspect writes docker's JSON array for the named images (or each
// one through opts.Format). Images it cannot find are reported in the
// returned error after the others are written, as docker does.
func ImageInspect(ctx context.Context, st *store.Store, refs []string, opts InspectOptions, w io.Writer) error {
	var out []imageInspect
	var errs []error
	for _, r := range refs {
		ii, err := inspectOne(ctx, st, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ii)
	}
	if opts.Format != "" {
		rows := make([]map[string]any, 0, len(out))
		for _, ii := range out {
			b, _ := json.Marshal(ii)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			rows = append(rows, m)
		}
		if err := renderRows(w, opts.Format, map[string]any{}, rows); err != nil {
			return err
		}
	} else {
		if out == nil {
			out = []imageInspect{}
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(w, string(b))
	}
	return errors.Join(errs...)
}

func inspectOne(ctx context.Context, st *store.Store, r string) (imageInspect, error) {
	img, mdigest, err := st.Image(ctx, r)
	if err != nil {
		return imageInspect{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return imageInspect{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return imageInspect{}, err
	}
	size, err := store.ImageSize(img)
	if err != nil {
		return imageInspect{}, err
	}
	mt, _ := img.MediaType()
	msize, _ := img.Size()
	tags, digests, err := st.RepoTags(ctx, id)
	if err != nil {
		return imageInspect{}, err
	}
	ii := imageInspect{
		ID: id.String(), RepoTags: familiarAll(tags), RepoDigests: familiarAll(digests),
		Author: cfg.Author, Config: cfg.Config, Architecture: cfg.Architecture, Variant: cfg.Variant,
		Os: cfg.OS, OsVersion: cfg.OSVersion, DockerVersion: cfg.DockerVersion, Size: size,
		RootFS:     rootFS{Type: "layers", Layers: []string{}},
		Metadata:   inspectMD{LastTagTime: "0001-01-01T00:00:00Z"},
		Descriptor: descriptor{MediaType: string(mt), Digest: mdigest.String(), Size: msize},
	}
	if !cfg.Created.IsZero() {
		ii.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	if cfg.RootFS.Type != "" {
		ii.RootFS.Type = cfg.RootFS.Type
	}
	for _, d := range cfg.RootFS.DiffIDs {
		ii.RootFS.Layers = append(ii.RootFS.Layers, d.String())
	}
	for _, h := range cfg.History {
		if h.Comment != "" {
			ii.Comment = h.Comment
		}
	}
	return ii, nil
}

// familiarAll shortens full references ("docker.io/library/a:1") to what
// docker prints ("a:1").
func familiarAll(full []string) []string {
	out := []string{}
	for _, s := range full {
		if n, err := reference.ParseNormalizedNamed(s); err == nil {
			out = append(out, reference.FamiliarString(n))
		}
	}
	return out
}

// HistoryOptions are `image history` flags.
type HistoryOptions struct {
	NoTrunc bool
	Quiet   bool
	Format  string
	// Now is the clock for the CREATED column; time.Now when nil.
	Now func() time.Time
}

type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

var historyHeader = historyRow{ID: "IMAGE", CreatedSince: "CREATED", CreatedAt: "CREATED AT",
	CreatedBy: "CREATED BY", Size: "SIZE", Comment: "COMMENT"}

// ImageHistory writes `docker history` for one image from its config's
// history, newest first. SIZE is the compressed size of the layer a step
// made (docker shows the uncompressed size); steps without a layer show 0B.
func ImageHistory(ctx context.Context, st *store.Store, name string, opts HistoryOptions, w io.Writer) error {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	img, _, err := st.Image(ctx, name)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	id, _ := img.ConfigName()
	hist := cfg.History
	if len(hist) == 0 {
		// Images without history get one step per layer, as docker shows them.
		for range m.Layers {
			hist = append(hist, v1.History{Created: cfg.Created})
		}
	}
	var rows []historyRow
	layer := 0
	for _, h := range hist {
		row := historyRow{ID: "<missing>", CreatedSince: createdSince(h.Created.Time, now()),
			CreatedAt: h.Created.In(now().Location()).Format(time.RFC3339), CreatedBy: h.CreatedBy,
			Size: "0B", Comment: h.Comment}
		if h.Created.IsZero() {
			row.CreatedAt = "N/A"
		}
		if !h.EmptyLayer && layer < len(m.Layers) {
			row.Size = humanSize(m.Layers[layer].Size)
			layer++
		}
		if !opts.NoTrunc {
			row.CreatedBy = ellipsis(row.CreatedBy, 45)
		}
		rows = append(rows, row)
	}
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	if len(rows) > 0 {
		rows[0].ID = id.String()
		if !opts.NoTrunc {
			rows[0].ID = shortID(rows[0].ID)
		}
	}
	format := opts.Format
	switch {
	case opts.Quiet:
		format = "{{.ID}}"
	case format == "" || format == "table":
		format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	}
	return renderRows(w, format, historyHeader, rows)
}
