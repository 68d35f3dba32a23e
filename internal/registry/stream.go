package registry

import (
	"hash"
	"io"
)

// hashCopy copies src to dst and into h, returning the bytes read. The
// write of one buffer runs while the next is hashed and read, so on two
// cores hashing and writing overlap instead of taking turns. Read and write
// errors are returned apart: one is the client's fault, the other ours.
func hashCopy(dst io.Writer, h hash.Hash, src io.Reader) (n int64, readErr, writeErr error) {
	a, b := copyBuffers.Get().(*[]byte), copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(a)
	defer copyBuffers.Put(b)
	cur, next := *a, *b

	writeDone := make(chan error, 1)
	pending := false
	wait := func() error {
		if !pending {
			return nil
		}
		pending = false
		return <-writeDone
	}
	for {
		k, rerr := fill(src, cur)
		if k > 0 {
			if err := wait(); err != nil {
				return n, nil, err
			}
			chunk := cur[:k]
			pending = true
			go func() {
				_, err := dst.Write(chunk)
				writeDone <- err
			}()
			h.Write(chunk)
			n += int64(k)
			cur, next = next, cur
		}
		if rerr == io.EOF {
			return n, nil, wait()
		}
		if rerr != nil {
			return n, rerr, wait()
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
