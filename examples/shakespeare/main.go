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
	"os"
	"strings"

	"github.com/smi-gomlx/smi/examples/shakespeare/study"
)

var commands = map[string]func(args []string) error{
	"train":   cmdTrain,
	"sample":  cmdSample,
	"analyze": cmdAnalyze,
	"report":  study.ReportCommand,
	"data":    cmdData,
	"speed":   cmdSpeed,
	"eval":    cmdEval,
	"study":   cmdStudy,
}

func main() {
	args := os.Args[1:]
	name := "train"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "error: unknown command %q: use train (the default), sample, eval, analyze, report, speed, study or data\n", name)
		os.Exit(2)
	}
	if err := runCommand(cmd, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
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
