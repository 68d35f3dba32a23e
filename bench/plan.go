package main

import (
	"time"

	"github.com/wharf/wharf/internal/registrytest"
)

// plan is the size of one run: the sizes for the full run, smaller
// ones for --quick (which CI runs so that the harness never rots).
type plan struct {
	Mode             string        `json:"mode"`
	Reps             int           `json:"reps"`
	PushSize         int64         `json:"push_bytes"`
	ChunkSize        int64         `json:"chunk_bytes"`
	PullSize         int64         `json:"pull_bytes"`
	ConcBlob         int64         `json:"concurrent_blob_bytes"`
	ConcClients      int           `json:"concurrent_clients"`
	StreamDuration   time.Duration `json:"stream_duration_ns"`
	ManifestConns    int           `json:"manifest_connections"`
	ManifestDuration time.Duration `json:"manifest_duration_ns"`
	Warmup           time.Duration `json:"warmup_ns"`
	SmallImages      int           `json:"small_images"`
	SmallClients     int           `json:"small_clients"`
	Tags             int           `json:"tags"`
	Repos            int           `json:"repositories"`
	ListRequests     int           `json:"list_requests_per_rep"`
	PageSize         int           `json:"page_size"`
	MemSizes         []int64       `json:"memory_push_bytes"`
	LimitSize        int64         `json:"limit_bytes"`
	SetupClients     int           `json:"setup_clients"`
	ProfileSeconds   int           `json:"profile_seconds"`
	ClientImage      int64         `json:"client_image_bytes"`
	// The mirror's rows: the blob of a cold pull, the uncached blob whose
	// streaming to MirrorClients clients at once the peak RSS is of.
	MirrorPull    int64 `json:"mirror_pull_bytes"`
	MirrorMem     int64 `json:"mirror_memory_bytes"`
	MirrorClients int   `json:"mirror_clients"`
	// The shared-storage section: its blob size (push and GET), the push
	// whose peak RSS it reports, its manifest window and how many times
	// each repetition asks for the whole catalog.
	SharedBlob             int64         `json:"shared_blob_bytes"`
	SharedMem              int64         `json:"shared_memory_push_bytes"`
	SharedManifestDuration time.Duration `json:"shared_manifest_duration_ns"`
	SharedListRequests     int           `json:"shared_list_requests_per_rep"`
	// The garbage collection rows: repositories seeded per repetition (a
	// third deleted), each image's layer size, and the shortest window
	// over which the push+pull rate without a collection is measured.
	GCRepos      int           `json:"gc_repositories"`
	GCLayer      int           `json:"gc_layer_bytes"`
	GCLoadWindow time.Duration `json:"gc_load_window_ns"`
	// Golden sizes the golden rows' database (seeded, not pushed).
	Golden registrytest.LineageScale `json:"golden"`
}

func fullPlan() plan {
	return plan{
		Mode:             "full",
		Reps:             3,
		PushSize:         1 << 30,
		ChunkSize:        16 << 20,
		PullSize:         1 << 30,
		ConcBlob:         16 << 20,
		ConcClients:      32,
		StreamDuration:   5 * time.Second,
		ManifestConns:    64,
		ManifestDuration: 10 * time.Second,
		Warmup:           time.Second,
		SmallImages:      1000,
		SmallClients:     8,
		Tags:             10000,
		Repos:            5000,
		ListRequests:     5,
		PageSize:         100,
		MemSizes:         []int64{256 << 20, 1 << 30, 4 << 30},
		LimitSize:        1 << 30,
		SetupClients:     8,
		ProfileSeconds:   10,
		ClientImage:      1 << 30,
		MirrorPull:       1 << 30,
		MirrorMem:        4 << 30,
		MirrorClients:    8,

		SharedBlob:             1 << 30,
		SharedMem:              4 << 30,
		SharedManifestDuration: 5 * time.Second,
		SharedListRequests:     2,

		GCRepos:      3000,
		GCLayer:      64 << 10,
		GCLoadWindow: 2 * time.Second,
		Golden:       registrytest.FullLineageScale,
	}
}

func quickPlan() plan {
	return plan{
		Mode:             "quick",
		Reps:             3,
		PushSize:         128 << 20,
		ChunkSize:        16 << 20,
		PullSize:         256 << 20,
		ConcBlob:         16 << 20,
		ConcClients:      32,
		StreamDuration:   time.Second,
		ManifestConns:    64,
		ManifestDuration: time.Second,
		Warmup:           300 * time.Millisecond,
		SmallImages:      100,
		SmallClients:     8,
		Tags:             1000,
		Repos:            500,
		ListRequests:     3,
		PageSize:         100,
		MemSizes:         []int64{64 << 20, 512 << 20},
		LimitSize:        256 << 20,
		SetupClients:     8,
		ProfileSeconds:   5,
		ClientImage:      64 << 20,
		MirrorPull:       64 << 20,
		MirrorMem:        256 << 20,
		MirrorClients:    8,

		SharedBlob:             128 << 20,
		SharedMem:              256 << 20,
		SharedManifestDuration: time.Second,
		SharedListRequests:     1,

		GCRepos:      300,
		GCLayer:      64 << 10,
		GCLoadWindow: time.Second,
		Golden:       registrytest.LineageScale{GoldenRepos: 10, GoldenPerRepo: 10, Apps: 1800, AppsPerRepo: 90, UsedBy: 1000},
	}
}
