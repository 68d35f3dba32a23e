package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// ImportOptions are `image import` flags.
type ImportOptions struct {
	// Message is the history comment (docker's --message); default
	// "Imported from -".
	Message string
	// Changes are Dockerfile instructions applied to the config (docker's
	// --change): CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
	// VOLUME, STOPSIGNAL.
	Changes []string
	// Platform ("os/arch[/variant]") is recorded in the config; "" means
	// linux and the host's architecture.
	Platform string
	// Now stamps the image's creation time; time.Now when nil.
	Now func() time.Time
}

// ImageImport makes a one-layer image from a root filesystem tar (plain or
// compressed), like `docker import`, tags it as target when given, and
// prints its ID.
func ImageImport(ctx context.Context, st *store.Store, rootfs io.Reader, target string, opts ImportOptions, w io.Writer) error {
	var named reference.Named
	if target != "" {
		n, err := ref.Parse(target)
		if err != nil {
			return err
		}
		if _, ok := n.(reference.Canonical); ok {
			return fmt.Errorf("refusing to create a tag with a digest reference: %s", target)
		}
		named = n
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform != "" {
		p, err := v1.ParsePlatform(opts.Platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("invalid platform %q: want os/arch[/variant]", opts.Platform)
		}
		platform = *p
	}
	// Checked before the filesystem is read, which may be large.
	var config v1.Config
	if err := applyChanges(&config, opts.Changes); err != nil {
		return err
	}
	// The layer is read several times (digest, diff ID, store), so spool it.
	f, err := os.CreateTemp(st.Root(), ".import-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, rootfs); err != nil {
		return fmt.Errorf("import: reading the filesystem tar: %w", err)
	}
	layer, err := tarball.LayerFromFile(f.Name())
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	created := v1.Time{Time: now().UTC().Truncate(time.Second)}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -"
	}
	cf.Architecture, cf.OS, cf.Variant = platform.Architecture, platform.OS, platform.Variant
	cf.Config = config
	cf.Created = created
	cf.History = []v1.History{{Created: created, Comment: comment}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := st.WriteImage(ctx, img); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if named != nil {
		if err := st.Tag(ctx, named, d); err != nil {
			return err
		}
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, id)
	return nil
}
