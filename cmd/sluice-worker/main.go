// Command sluice-worker is `sluice worker` in a binary of its own: the same
// flags and SLUICE_* variables, without the embedded Temporal server, the
// broker and the benchmark linked in, so a production worker loads a third
// of the code (about 70 MB less resident memory).
package main

import "github.com/sluicedata/sluice/internal/cli"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	cli.Program{
		Name:    "sluice-worker",
		Version: version,
		Usage: `sluice-worker: a Sluice Temporal worker (every workflow and activity registered).

usage: sluice-worker worker [flags]   (the flags of 'sluice worker'; 'sluice-worker worker -h' lists them)
       sluice-worker version`,
		Commands: map[string]cli.Command{"worker": cli.Worker},
	}.Main()
}
