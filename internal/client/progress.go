package client

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// display shows per-layer progress as docker does: on a terminal, one live
// line per layer with a bar, bytes and rate; elsewhere, plain "ID: Status"
// lines in manifest order, so that logs read the same every time.
type display struct {
	out io.Writer
	tty bool

	mu     sync.Mutex
	ids    []string
	status []string
	p      *mpb.Progress
	bars   []*mpb.Bar
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newDisplay(out io.Writer) *display {
	return &display{out: out, tty: isTerminal(out)}
}

// println prints a line outside the per-layer block.
func (d *display) println(format string, args ...any) {
	fmt.Fprintf(d.out, format+"\n", args...)
}

// begin shows one line per layer with its first status. Layers whose
// status is final already (e.g. "Already exists") get no bar.
func (d *display) begin(ids, status []string) {
	d.ids = ids
	d.status = append([]string(nil), status...)
	if !d.tty {
		for i, id := range ids {
			d.println("%s: %s", id, status[i])
		}
		return
	}
	d.p = mpb.New(mpb.WithOutput(d.out), mpb.WithWidth(40))
	d.bars = make([]*mpb.Bar, len(ids))
	for i, id := range ids {
		d.bars[i] = d.p.New(0, mpb.BarStyle(),
			mpb.BarFillerClearOnComplete(),
			mpb.PrependDecorators(
				decor.Name(id+": "),
				decor.Any(func(decor.Statistics) string { return d.get(i) }, decor.WCSyncSpaceR),
			),
			mpb.AppendDecorators(
				decor.OnComplete(decor.CountersKibiByte("% .1f / % .1f"), ""),
				decor.OnComplete(decor.AverageSpeed(decor.SizeB1024(0), " % .1f"), ""),
			),
		)
	}
}

func (d *display) get(i int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status[i]
}

// set changes a layer's status; in plain mode only the final statuses are
// printed (by finish), in manifest order.
func (d *display) set(i int, status string) {
	d.mu.Lock()
	d.status[i] = status
	d.mu.Unlock()
}

// transfer wraps the bytes of layer i so that the bar follows them.
func (d *display) transfer(i int, size int64, r io.ReadCloser) io.ReadCloser {
	if !d.tty {
		return r
	}
	b := d.bars[i]
	b.SetTotal(size, false)
	pr, err := b.ProxyReader(r)
	if err != nil {
		return r
	}
	return closeBoth{ReadCloser: pr, inner: r}
}

// closeBoth closes the proxy and the reader under it.
type closeBoth struct {
	io.ReadCloser
	inner io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if err2 := c.inner.Close(); err == nil {
		err = err2
	}
	return err
}

// done marks layer i finished with its final status.
func (d *display) done(i int, status string) {
	d.set(i, status)
	if d.tty {
		d.bars[i].SetTotal(-1, true)
	}
}

// finish ends the block. In plain mode it prints, for each layer in
// order, every status in lines[i] (e.g. "Download complete", "Pull
// complete"); on a terminal the bars already show the final status.
func (d *display) finish(lines [][]string) {
	if d.tty {
		for _, b := range d.bars {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		d.p.Wait()
		return
	}
	for i, id := range d.ids {
		for _, s := range lines[i] {
			d.println("%s: %s", id, s)
		}
	}
}
