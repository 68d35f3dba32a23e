package s3

import (
	"context"

	"github.com/minio/minio-go/v7"
)

// dirRaceAttempts bounds retries of a write that lost versitygw's
// directory race; each loss needs a delete emptying the directory at that
// very moment, so a few attempts suffice and a stuck failure still shows.
const dirRaceAttempts = 5

// retryDirRace runs a write, and runs it again while the server answers
// ExistingObjectIsDirectory. versitygw's posix backend removes a
// directory that a delete leaves empty, and a PUT racing that removal
// into the same directory fails with this code although nothing is wrong
// (versity/versitygw#1988): two replicas' start-up probes under .probe/,
// or a tail written while another session's last object under uploads/
// is deleted. A retry finds the directory made anew. No other error is
// retried, and write must start from scratch on each call (a fresh
// reader), because the failed attempt may have read some of its body.
func retryDirRace[T any](ctx context.Context, write func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := write()
		if err == nil || attempt == dirRaceAttempts || ctx.Err() != nil ||
			minio.ToErrorResponse(err).Code != "ExistingObjectIsDirectory" {
			return v, err
		}
	}
}
