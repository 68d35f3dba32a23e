package registry

import (
	"hash"
	"io"
	"sync"
)

// copyDepth is how many copyBuffers one stream holds: one being written,
// the rest filled and hashed ahead of the write. Two (one each side) made
// every stall of the disk (a writeback hint or a write that waits for the
// device queue, 10-20 ms on a busy VM) stop the reading too, and the
// client's bytes back up into its socket. Four let the reader run 3 MiB
// ahead, at up to 4 MiB of buffers per upload in flight.
const copyDepth = 4

// HashCopy copies src to dst and into h, returning the bytes read. Reading
// and hashing run on the caller's goroutine, writing on another, with up to
// copyDepth buffers between them, so that on two cores hashing and writing
// overlap and a slow write does not stall the reading at once. Read and
// write errors are returned apart: one is the client's fault, the other
// ours. Every write has returned when HashCopy does; after a write error
// nothing more is written.
//
// It is exported for the benchmark's push ceiling, which must do this same
// work with no registry around it.
func HashCopy(dst io.Writer, h hash.Hash, src io.Reader) (n int64, readErr, writeErr error) {
	// Buffers are taken from the pool only as the writer falls behind, so
	// that a small blob (most config blobs and many layers) holds one.
	held := make([]*[]byte, 0, copyDepth)
	defer func() {
		for _, bp := range held {
			copyBuffers.Put(bp)
		}
	}()
	free := make(chan []byte, copyDepth)
	full := make(chan []byte, copyDepth)
	failed := make(chan struct{}) // closed when a write fails
	var werr error                // the writer's; read only after wg.Wait
	var wg sync.WaitGroup
	wg.Go(func() {
		for chunk := range full {
			if werr == nil {
				if _, werr = dst.Write(chunk); werr != nil {
					close(failed)
				}
			}
			free <- chunk[:cap(chunk)]
		}
	})
	finish := func() error {
		close(full)
		wg.Wait()
		return werr
	}
	// next returns a buffer to fill, or nil once a write has failed.
	next := func() []byte {
		select {
		case <-failed:
			return nil
		case buf := <-free:
			return buf
		default:
		}
		if len(held) < copyDepth {
			bp := copyBuffers.Get().(*[]byte)
			held = append(held, bp)
			return *bp
		}
		select {
		case <-failed:
			return nil
		case buf := <-free:
			return buf
		}
	}

	for {
		buf := next()
		if buf == nil {
			return n, nil, finish()
		}
		k, rerr := fill(src, buf)
		if k > 0 {
			// Handed over before it is hashed: the writer and the hasher
			// only read the buffer, and it comes back through free, which
			// only this loop takes from, after both are done with it.
			full <- buf[:k]
			h.Write(buf[:k])
			n += int64(k)
		} else {
			free <- buf
		}
		if rerr == io.EOF {
			return n, nil, finish()
		}
		if rerr != nil {
			return n, rerr, finish()
		}
	}
}

// fill reads until buf is full or src fails. Unlike io.ReadFull it keeps
// io.ErrUnexpectedEOF from src apart from a clean io.EOF: a request body
// cut off mid-stream reports the former, and must not pass for the end.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
