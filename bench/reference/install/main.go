// Command install puts the reference registry where the benchmarks and the
// end-to-end tests look for it (test/e2e/setup.sh runs it) and prints its
// path.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wharf/wharf/bench/reference"
)

func main() {
	progress := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	bin, err := reference.Ensure(context.Background(), reference.DefaultCacheDir(), progress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "install reference registry:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
