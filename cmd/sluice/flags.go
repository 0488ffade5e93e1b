package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// flagSet wraps flag.FlagSet so every flag also reads SLUICE_<NAME> from the
// environment (flag --mysql-dsn <-> SLUICE_MYSQL_DSN). A flag given on the
// command line wins over the variable.
type flagSet struct {
	*flag.FlagSet
	envErrs []string
}

func newFlagSet(name, usage string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sluice %s [flags]\n\n%s\n\nFlags (each also read from SLUICE_<FLAG_NAME>):\n", name, usage)
		fs.PrintDefaults()
	}
	return &flagSet{FlagSet: fs}
}

func envName(flagName string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flagSet) envString(name, def string) string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v
	}
	return def
}

func (f *flagSet) String(name, def, usage string) *string {
	return f.FlagSet.String(name, f.envString(name, def), usage)
}

func (f *flagSet) Int(name string, def int, usage string) *int {
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

func (f *flagSet) Float64(name string, def float64, usage string) *float64 {
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

func (f *flagSet) Duration(name string, def time.Duration, usage string) *time.Duration {
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

// parse parses args and reports bad environment values too.
func (f *flagSet) parse(args []string) error {
	if err := f.Parse(args); err != nil {
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
