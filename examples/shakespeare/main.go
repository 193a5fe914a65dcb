// Command shakespeare trains nanoGPT's character-level GPT on tiny Shakespeare (or any UTF-8 text,
// -data) with AdamW, alone or wrapped in SMI, as in the paper's experiment (section 4), and
// measures what the paper reports.
//
//	shakespeare [train] -preset cpu -run 5      # train; writes metrics, plot and checkpoint
//	shakespeare sample  -out DIR                # generate text from a run's checkpoint
//	shakespeare eval    -out DIR                # losses of a checkpoint on many batches
//	shakespeare analyze -out DIR                # parameter and activation analysis
//	shakespeare report  DIR...                  # compare runs: table, tests, plots
//	shakespeare speed   DIR DIR...              # interleaved inference-speed comparison
//	shakespeare study   -preset cpu             # the paper's runs x seeds, analysed and reported
//	shakespeare data                            # download (if missing) and verify the corpus, or check -data
//
// See docs/SHAKESPEARE.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/cli"
)

// command is a subcommand: its function, and its line in the help.
type command struct {
	name, summary string
	run           func(args []string) error
}

// commands are the subcommands, in the order the help lists them; the first, train, is the
// default (a command line that starts with a flag, or is empty, trains).
var commands = []command{
	{"train", "train a run (the default command); writes metrics, plot and checkpoint", cmdTrain},
	{"sample", "generate text from a run's checkpoint", cmdSample},
	{"eval", "losses of a run's checkpoint on many batches", cmdEval},
	{"analyze", "parameter and activation analysis of a run's checkpoint", cmdAnalyze},
	{"report", "compare runs (table, tests, plots), or write the reproduction report", study.ReportCommand},
	{"speed", "interleaved inference-speed comparison of trained runs", cmdSpeed},
	{"study", "the paper's runs x seeds, trained, analysed, measured and reported", cmdStudy},
	{"data", "download (if missing) and verify the corpus, or check -data", cmdData},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// printHelp lists the subcommands, one line each, on w.
func printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: shakespeare [COMMAND] [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n`shakespeare COMMAND -help` (or `shakespeare help COMMAND`) gives a command's flags; see docs/SHAKESPEARE.md.\n\n")
}

func main() {
	// A reader of the output that goes away (`| tee log` ended by the Ctrl-C meant for the
	// trainer, a closed ssh session) must not kill the program on its next line, before the stop
	// checkpoint: what it prints then is lost, its files are not.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run runs the command line args (the program's arguments) and returns the exit status: 0, 1
// when the command failed, 2 for a bad command line (cli.UsageError, an unknown command). The
// error goes to stderr in one line.
func run(args []string, stderr io.Writer) int {
	name := commands[0].name
	switch {
	case len(args) > 0 && args[0] == "help":
		// `help` lists the commands then gives the default command's flags; `help COMMAND`, that
		// command's flags.
		if len(args) > 2 {
			fmt.Fprintf(stderr, "error: help takes one command at most, got %q\n", args[1:])
			return 2
		}
		if len(args) == 1 {
			printHelp(stderr)
		} else {
			name = args[1]
		}
		args = []string{"-help"}
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		name, args = args[0], args[1:]
	case len(args) > 0 && slices.Contains([]string{"-h", "-help", "--h", "--help"}, args[0]):
		printHelp(stderr) // then the default command's flags
	}
	cmd, ok := lookup(name)
	if !ok {
		var names []string
		for _, c := range commands {
			names = append(names, c.name)
		}
		fmt.Fprintf(stderr, "error: unknown command %q: use one of %s (train is the default; see -help)\n", name, strings.Join(names, ", "))
		return 2
	}
	err := runCommand(cmd.run, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	if cli.IsUsage(err) {
		return 2
	}
	return 1
}

// runCommand turns GoMLX's graph-building panics into errors, so users see a message, not a trace.
func runCommand(cmd func([]string) error, args []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return cmd(args)
}
