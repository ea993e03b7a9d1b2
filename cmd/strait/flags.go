package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// parseFlags parses args, then fills every flag not given on the command line from its
// STRAIT_* environment variable (--data-dir from STRAIT_DATA_DIR): flags win over the
// environment, which wins over defaults.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		value, ok := os.LookupEnv(env)
		if given[f.Name] || !ok || err != nil {
			return
		}
		if setErr := fs.Set(f.Name, value); setErr != nil {
			err = fmt.Errorf("%s=%q: %w", env, value, setErr)
		}
	})
	return err
}

func envName(flagName string) string {
	return "STRAIT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
