package client

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestDisplay_PlainLinesComeAsLayersFinishInManifestOrder checks the
// non-terminal output: a layer's final lines are printed as soon as it and
// every layer before it are finished, not held until the whole transfer
// ends, and never out of manifest order.
func TestDisplay_PlainLinesComeAsLayersFinishInManifestOrder(t *testing.T) {
	var out bytes.Buffer
	d := newDisplay(&out)
	if d.tty {
		t.Fatal("a bytes.Buffer is not a terminal")
	}
	d.begin([]string{"aaa", "bbb", "ccc"}, []string{"Preparing", "Preparing", "Preparing"})
	want := "aaa: Preparing\nbbb: Preparing\nccc: Preparing\n"
	check := func(step string) {
		t.Helper()
		if out.String() != want {
			t.Fatalf("after %s:\n%s\nwant:\n%s", step, out.String(), want)
		}
	}
	check("begin")

	d.done(1, "Pushed", "Pushed")
	check("the second layer finished first") // held back behind the first

	d.done(0, "Layer already exists", "Layer already exists")
	want += "aaa: Layer already exists\nbbb: Pushed\n"
	check("the first layer finished")

	d.done(0, "Pushed", "Pushed") // a layer finishes once
	check("the first layer finished again")

	d.done(2, "Download complete", "Download complete", "Pull complete")
	want += "ccc: Download complete\nccc: Pull complete\n"
	check("the last layer finished")

	d.finish()
	check("finish")
}

// TestDisplay_FinishPrintsWhatAnErrorHeldBack checks that after a failed
// layer (no lines), the layers that did finish still print, in order.
func TestDisplay_FinishPrintsWhatAnErrorHeldBack(t *testing.T) {
	var out bytes.Buffer
	d := newDisplay(&out)
	d.begin([]string{"aaa", "bbb", "ccc"}, []string{"Preparing", "Preparing", "Preparing"})
	d.done(2, "Pushed", "Pushed")
	d.finish() // aaa never finished (its upload failed), bbb never started
	if want := "aaa: Preparing\nbbb: Preparing\nccc: Preparing\nccc: Pushed\n"; out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// closeOnce is a reader that, like an *os.File, fails when closed twice.
type closeOnce struct {
	*bytes.Reader
	closed int
}

func (c *closeOnce) Close() error {
	c.closed++
	if c.closed > 1 {
		return errors.New("file already closed")
	}
	return nil
}

// TestDisplay_TerminalTransferClosesTheLayerOnce checks the terminal path
// (live bars): reading a layer through its bar and closing it closes the
// layer's reader exactly once. (Closing it twice broke every upload on a
// terminal: the registry client saw "file already closed".)
func TestDisplay_TerminalTransferClosesTheLayerOnce(t *testing.T) {
	var out bytes.Buffer
	d := &display{out: &out, tty: true} // as newDisplay makes it on a terminal
	d.begin([]string{"aaa"}, []string{"Preparing"})
	src := &closeOnce{Reader: bytes.NewReader([]byte("layer bytes"))}
	rc := d.transfer(0, int64(src.Len()), src)
	if b, err := io.ReadAll(rc); err != nil || string(b) != "layer bytes" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if src.closed != 1 {
		t.Errorf("the layer's reader was closed %d times, want once", src.closed)
	}
	d.done(0, "Pushed")
	d.finish()
}
