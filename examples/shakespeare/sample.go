package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/stats"
	"github.com/smi-gomlx/smi/examples/shakespeare/study"
	"github.com/smi-gomlx/smi/internal/backend"
	"github.com/smi-gomlx/smi/internal/cli"
	"github.com/smi-gomlx/smi/internal/gpt"
)

// openRun loads the corpus at dataPath and the run in dir (see loadRun), and opens the backend:
// what every command that reads one trained run starts with.
func openRun(dataPath, device, dir string) (*data.Corpus, *context.Context, gpt.Config, backends.Backend, error) {
	corpus, b, err := openRunDirs(dataPath, device, dir)
	if err != nil {
		return nil, nil, gpt.Config{}, nil, err
	}
	ctx, cfg, err := loadRun(dir, corpus)
	if err != nil {
		return nil, nil, gpt.Config{}, nil, err
	}
	return corpus, ctx, cfg, b, nil
}

// openRunDirs checks the device (-device's value) and that each run directory holds a checkpoint
// (checkRunDirs), then loads the corpus at dataPath and opens the backend on the device, in that
// order.
func openRunDirs(dataPath, device string, dirs ...string) (*data.Corpus, backends.Backend, error) {
	if err := study.CheckDevice(device); err != nil {
		return nil, nil, err
	}
	if err := checkRunDirs(dirs...); err != nil {
		return nil, nil, err
	}
	corpus, err := data.Open(dataPath)
	if err != nil {
		return nil, nil, err
	}
	if err := backend.SetDevice(device); err != nil {
		return nil, nil, err
	}
	b, err := backend.New()
	if err != nil {
		return nil, nil, err
	}
	return corpus, b, nil
}

// checkRunDirs checks that each run directory holds a checkpoint, without reading one: the
// commands that read trained runs call it before they read (or download) the data, so that a
// mistyped directory is not hidden behind a missing data file. loadRun reads the checkpoint.
func checkRunDirs(dirs ...string) error {
	for _, dir := range dirs {
		all, err := runStore(dir).list()
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if len(all) == 0 {
			return errNoCheckpoint(dir)
		}
	}
	return nil
}

func errNoCheckpoint(dir string) error {
	return fmt.Errorf("no checkpoint in %s: train first (shakespeare train -out %s)", dir, dir)
}

// loadRun opens a run directory's newest checkpoint that reads back (see ckptStore) and
// returns its context and model configuration; the run must have trained on corpus's text.
func loadRun(dir string, corpus *data.Corpus) (*context.Context, gpt.Config, error) {
	store := runStore(dir)
	c, _, _, skipped, found, err := store.newest()
	if err != nil {
		return nil, gpt.Config{}, err
	}
	if !found {
		return nil, gpt.Config{}, errNoCheckpoint(dir)
	}
	for _, line := range skipped {
		fmt.Fprintf(os.Stderr, "Skipping a checkpoint that does not read back: %s.\n", line)
	}
	ckptDir := c.dir
	ctx := context.New()
	if _, err := checkpoints.Load(ctx).Dir(ckptDir).Immediate().Done(); err != nil {
		return nil, gpt.Config{}, fmt.Errorf("loading %s: %v", ckptDir, err)
	}
	migrateParams(ctx)
	if err := checkRunData(ctx, corpus, dir); err != nil {
		return nil, gpt.Config{}, err
	}
	name := context.GetParamOr(ctx, "preset", "")
	preset, err := gpt.Preset(name)
	if err != nil {
		return nil, gpt.Config{}, fmt.Errorf("%s: %v", ckptDir, err)
	}
	cfg, err := gpt.FromContext(ctx, preset)
	if err != nil {
		return nil, gpt.Config{}, fmt.Errorf("%s: %v", ckptDir, err)
	}
	return ctx.Checked(false), cfg, nil
}

func cmdSample(args []string) error { return sampleTo(os.Stdout, args) }

// sampleTo is the sample command, printing the generated text to text.
func sampleTo(text io.Writer, args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	out := fs.String("out", "results/shakespeare/cpu-run5-seed1337", "run directory holding the checkpoint")
	dataPath := fs.String("data", data.DefaultPath(), "the text the run trained on (for the vocabulary)")
	n := fs.Int("tokens", 500, "characters to generate")
	prompt := fs.String("prompt", "\n", "text to start from")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature (0: always the likeliest character)")
	seed := fs.Int64("seed", 1337, "sampling seed")
	device := fs.String("device", "", backend.DeviceUsage)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
	}
	if *n <= 0 {
		return cli.Usagef("-tokens must be positive, got %d", *n)
	}
	if !(*temperature >= 0) || math.IsInf(*temperature, 1) {
		return cli.Usagef("-temperature must be a finite number >= 0, got %v", *temperature)
	}
	corpus, ctx, cfg, b, err := openRun(*dataPath, *device, *out)
	if err != nil {
		return err
	}
	if unknown := corpus.Unknown([]byte(*prompt)); len(unknown) > 0 {
		return errUnknownChars(unknown, len(corpus.Chars))
	}
	promptIDs := corpus.Encode([]byte(*prompt))
	// The text is printed as it is generated: the prompt (token 0 when empty, where generation
	// starts), then each character as it is sampled.
	start := promptIDs
	if len(start) == 0 {
		start = []int32{0}
	}
	w := bufio.NewWriter(text)
	fmt.Fprint(w, corpus.Decode(start))
	_, err = newGenerator(b, ctx, cfg).generate(promptIDs, *n, *temperature, data.RNG(*seed, 0), func(id int32) {
		fmt.Fprint(w, corpus.Decode([]int32{id}))
		_ = w.Flush()
	})
	fmt.Fprintln(w)
	if flushErr := w.Flush(); err == nil {
		err = flushErr
	}
	return err
}

// errUnknownChars names the characters of -prompt that are not in the training text's
// vocabulary of vocabSize characters: the first few of them, each quoted; a bad -prompt is a
// usage error.
func errUnknownChars(unknown []rune, vocabSize int) error {
	const shown = 5
	names := make([]string, 0, shown)
	for _, r := range unknown[:min(len(unknown), shown)] {
		names = append(names, fmt.Sprintf("%q", string(r)))
	}
	list, verb := strings.Join(names, ", "), "is"
	if len(unknown) > 1 {
		verb = "are"
	}
	if more := len(unknown) - shown; more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return cli.Usagef("-prompt: %s %s not in the training text's vocabulary (its %d distinct characters)", list, verb, vocabSize)
}

// cmdData makes the corpus available (downloading it to the default path when missing) and
// verifies it.
func cmdData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	dataPath := fs.String("data", data.DefaultPath(), "a UTF-8 text file (default: tiny Shakespeare, downloaded there when missing)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
	}
	corpus, err := data.Open(*dataPath)
	if err != nil {
		return err
	}
	what := "not tiny Shakespeare"
	if corpus.IsTinyShakespeare() {
		what = "tiny Shakespeare"
	}
	fmt.Printf("Data: %s (%s; %d characters of training text, %d of validation, vocabulary of %d)\n",
		*dataPath, what, len(corpus.Train), len(corpus.Val), len(corpus.Chars))
	return nil
}

// cmdEval estimates a checkpoint's losses on many batches, more precisely than the
// training-time evaluations.
func cmdEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	out := fs.String("out", "results/shakespeare/cpu-run5-seed1337", "run directory holding the checkpoint")
	dataPath := fs.String("data", data.DefaultPath(), "the text the run trained on")
	batches := fs.Int("batches", 200, "random batches per split")
	seed := fs.Int64("seed", 1, "seed of the batches")
	device := fs.String("device", "", backend.DeviceUsage)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := cli.CheckArgs(fs, args, ""); err != nil {
		return err
	}
	if *batches < 2 {
		return cli.Usagef("-batches must be at least 2, got %d", *batches)
	}
	corpus, ctx, cfg, b, err := openRun(*dataPath, *device, *out)
	if err != nil {
		return err
	}
	ev := newEvaluator(b, ctx, cfg, corpus, *seed)
	for k, split := range []struct {
		name   string
		tokens []int32
	}{{"train", corpus.Train}, {"val", corpus.Val}} {
		ev.progress = showProgress(split.name + " split")
		losses, err := ev.batchLosses(split.tokens, data.RNG(*seed, data.StreamEval-2+uint64(k)), *batches)
		if err != nil {
			return err
		}
		mean, lo, hi := stats.MeanCI95(losses)
		fmt.Printf("%-5s loss %.4f (95%% CI %.4f to %.4f, %d batches of %dx%d)\n", split.name, mean, lo, hi, *batches, cfg.BatchSize, cfg.BlockSize)
	}
	return nil
}
