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
// lines without the byte counts (docker leaves out its Pushing/Downloading
// progress lines there too). Plain lines come as layers finish, but in
// manifest order: a layer's lines wait for the layers before it, so that
// logs read the same every time.
type display struct {
	out io.Writer
	tty bool

	mu       sync.Mutex
	ids      []string
	status   []string
	finished []bool
	lines    [][]string // plain mode: what a finished layer prints
	next     int        // plain mode: the first layer not printed yet
	p        *mpb.Progress
	bars     []*mpb.Bar
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
	d.finished = make([]bool, len(ids))
	d.lines = make([][]string, len(ids))
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
// printed (by done), in manifest order.
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
	return pr // closing the proxy closes r (closing r again would fail)
}

// done marks layer i finished with its final status. In plain mode it
// then prints lines (e.g. "Download complete", "Pull complete") for it,
// and for the finished layers after it, once every layer before it has
// printed. A layer is finished once; later calls are ignored.
func (d *display) done(i int, status string, lines ...string) {
	d.mu.Lock()
	if d.finished[i] {
		d.mu.Unlock()
		return
	}
	d.finished[i] = true
	d.status[i] = status
	if d.tty {
		// Unlocked: the bar's decorators take d.mu to read the status.
		d.mu.Unlock()
		d.bars[i].SetTotal(-1, true)
		return
	}
	d.lines[i] = lines
	d.flush(false)
	d.mu.Unlock()
}

// flush prints, in order, the lines of the finished layers from d.next on,
// stopping at the first unfinished one unless all is set. d.mu is held.
func (d *display) flush(all bool) {
	for ; d.next < len(d.ids); d.next++ {
		if !d.finished[d.next] && !all {
			return
		}
		for _, s := range d.lines[d.next] {
			fmt.Fprintf(d.out, "%s: %s\n", d.ids[d.next], s)
		}
	}
}

// finish ends the block: on a terminal it waits for the bars to draw their
// final state; in plain mode it prints what finished layers still hold
// back (layers that never finished, after an error, print nothing).
func (d *display) finish() {
	if d.tty {
		for _, b := range d.bars {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		d.p.Wait()
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flush(true)
}
