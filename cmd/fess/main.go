// Command fess trains and evaluates 3-D U-Nets for medical image segmentation
// with the FESS loss. Run `fess help` for the list of subcommands.
//
// Each subcommand lives in its own file and registers itself in init() with
// register; this file only dispatches and maps errors to exit codes
// (0 success, 2 bad usage or input, 3 interrupted by SIGTERM or SIGUSR1
// with the state saved and resumable (fess train --resume), 130 interrupted
// by SIGINT (state saved likewise), 1 anything else).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/fess-seg/fess/errs"
	"github.com/fess-seg/fess/train"
)

type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	commands[name] = command{name, summary, run}
}

// newFlags returns a FlagSet that reports errors instead of exiting, with a
// usage text showing the example.
func newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	_ = usage
	return fs
}

// parseFlags parses args; -h/--help prints usage and returns errHelp.
func parseFlags(fs *flag.FlagSet, usage string, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprintln(os.Stdout, usage)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return errs.Usage("%s: %v\n%s", fs.Name(), err, usage)
	}
	return nil
}

var errHelp = fmt.Errorf("help shown")

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fess <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nrun `fess <command> --help` for its flags and an example")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "fess: unknown command %q\n", args[0])
		usage()
		return 2
	}
	err := c.run(args[1:])
	if err == errHelp {
		return 0
	}
	var ie *train.ErrInterrupted
	switch {
	case errors.As(err, &ie):
		fmt.Fprintf(os.Stderr, "fess: %v\n", err)
	case err != nil:
		// many commands' errors start with their own name ("bench: …"),
		// which this line already gives
		fmt.Fprintf(os.Stderr, "fess %s: %s\n", c.name, strings.TrimPrefix(err.Error(), c.name+": "))
	}
	return errs.ExitCode(err)
}
