// Package cli holds what Sluice's binaries share: flags that fall back to
// SLUICE_* variables, logging, telemetry set-up, signal handling and command
// dispatch, and the worker command (also built alone as sluice-worker, a
// binary without the embedded Temporal server).
package cli

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// FlagSet wraps flag.FlagSet so every flag also reads SLUICE_<NAME> from the
// environment (flag --mysql-dsn <-> SLUICE_MYSQL_DSN). A flag given on the
// command line wins over the variable.
type FlagSet struct {
	*flag.FlagSet
	envErrs []string
}

// NewFlagSet makes the flags of command name (its usage line reads
// "usage: sluice <name> [flags]").
func NewFlagSet(name, usage string) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sluice %s [flags]\n\n%s\n\nFlags (each also read from SLUICE_<FLAG_NAME>):\n", name, usage)
		fs.PrintDefaults()
	}
	return &FlagSet{FlagSet: fs}
}

func envName(flagName string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *FlagSet) envString(name, def string) string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v
	}
	return def
}

func (f *FlagSet) String(name, def, usage string) *string {
	return f.FlagSet.String(name, f.envString(name, def), usage)
}

func (f *FlagSet) Int(name string, def int, usage string) *int {
	if v, ok := os.LookupEnv(envName(name)); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: not an integer", envName(name), v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Int(name, def, usage)
}

func (f *FlagSet) Float64(name string, def float64, usage string) *float64 {
	if v, ok := os.LookupEnv(envName(name)); ok {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: not a number", envName(name), v))
		} else {
			def = n
		}
	}
	return f.FlagSet.Float64(name, def, usage)
}

func (f *FlagSet) Duration(name string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(envName(name)); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.envErrs = append(f.envErrs, fmt.Sprintf("%s=%q: not a duration", envName(name), v))
		} else {
			def = d
		}
	}
	return f.FlagSet.Duration(name, def, usage)
}

// Parse parses args and reports bad environment values too.
func (f *FlagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if len(f.envErrs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(f.envErrs, "; "))
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
