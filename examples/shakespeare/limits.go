package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
	gomlxopt "github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/gpt"
	smiopt "github.com/smi-gomlx/smi/optimizers"
	"github.com/smi-gomlx/smi/spectral"
)

// This file holds what a run's settings must fit, checked before any graph is built: the data's
// splits and the machine's memory. gpt.Config.Validate checks the settings among themselves.

// paramData is the hyperparameter holding the SHA-256 checksum of the text a run trains on: a run
// resumes, and sample, eval, analyze and speed read it, only with the same text (a vocabulary is
// the text's own).
const paramData = "data_sha256"

// checkData reports settings the text cannot feed: a block is block_size+1 consecutive characters
// of one split (the input and, shifted by one, its targets), so each split must hold more than
// block_size characters.
func checkData(cfg gpt.Config, corpus *data.Corpus, path string) error {
	most := min(len(corpus.Train), len(corpus.Val)) - 1
	for _, split := range []struct {
		name string
		n    int
	}{{"training", len(corpus.Train)}, {"validation", len(corpus.Val)}} {
		if split.n > cfg.BlockSize {
			continue
		}
		advice := fmt.Sprintf("lower block_size to at most %d, or train on a longer text", most)
		if most < 1 {
			advice = "train on a longer text"
		}
		return fmt.Errorf("block_size=%d is longer than the data allows: a block is block_size+1 consecutive characters "+
			"of one split, and the %s split of %s has %d (its %d characters split 90/10 for training and validation): %s",
			cfg.BlockSize, split.name, filepath.Base(path), split.n, len(corpus.Train)+len(corpus.Val), advice)
	}
	return nil
}

// maxIters bounds max_iters: a run records every iteration (its training loss, with SMI the
// filter's telemetry) in its history, which it holds in memory and writes with every checkpoint,
// and GoMLX's training loop reserves a duration per step before the first. Ten million
// iterations are 80 MB of losses alone; nanoGPT's longest recipe (GPT-2 124M on OpenWebText) is
// 600,000.
const maxIters = 10_000_000

// checkIters reports a max_iters beyond maxIters.
func checkIters(cfg gpt.Config) error {
	if cfg.MaxIters > maxIters {
		return fmt.Errorf("max_iters=%d: at most %d (every iteration is recorded in the run's history, held in memory and written with each checkpoint)",
			cfg.MaxIters, maxIters)
	}
	return nil
}

// attentionFloor is a lower bound of a training step's memory in bytes: the attention weights that
// every layer keeps for the backward pass, n_layer*batch*n_head*block_size^2 float32 values, for
// batch rows of a batch (a device's share when data-parallel). The step needs more (the other
// activations, the weights, the optimizer's state), so a floor beyond the memory cannot run.
func attentionFloor(cfg gpt.Config, batch int) float64 {
	return 4 * float64(cfg.NLayer) * float64(batch) * float64(cfg.NHead) * float64(cfg.BlockSize) * float64(cfg.BlockSize)
}

// stateFloor is a lower bound of the memory in bytes that training holds for the parameters on
// each device: float32 copies of each, the weights and AdamW's two moments, and with grad_clip > 0
// also the gradients (the global norm needs every gradient before any update); with histories,
// also SMI's history of each variable's spectrum (historyValues). Data-parallel training
// (-devices) keeps all of it on every device.
func stateFloor(cfg gpt.Config, histories bool) float64 {
	copies := 3.0
	if cfg.GradClip > 0 {
		copies = 4
	}
	n := copies * cfg.ParamCount(true)
	if histories {
		n += historyValues(cfg)
	}
	return 4 * n
}

// historyValues is the number of float32 values of SMI's histories when it filters every
// variable: n x (d/2+1) real-FFT bins for each variable's n x d matrix view (spectral.HistoryShape).
func historyValues(cfg gpt.Config) float64 {
	n := 0.0
	for _, w := range cfg.Weights(true) {
		n += float64(w.Count) * float64(w.Rows) * float64(spectral.HalfBins(w.Cols))
	}
	return n
}

// keepsHistories reports whether the run's optimizer (ctx's settings) keeps SMI's history for
// every variable: SMI without smi_exclude, whose patterns the memory floor does not evaluate (it
// counts no history then, and stays a lower bound).
func keepsHistories(ctx *context.Context) bool {
	return context.GetParamOr(ctx, gomlxopt.ParamOptimizer, "") == smiopt.OptimizerName &&
		strings.TrimSpace(context.GetParamOr(ctx, smiopt.ParamExclude, "")) == ""
}

// checkMemory reports settings whose training step cannot fit in the memory at hand: on a CPU
// (the backend's devices share the host's memory), memoryError against the host's memory
// (MemTotal of /proc/meminfo). Past it, the first allocations that do not fit fail with XLA's
// "Out of memory", and those that fit one by one get the process killed by the kernel, without a
// word, once their pages are written. An accelerator's memory is not known before its plugin
// allocates, so settings too large for it fail there (XLA's "out of memory").
func checkMemory(b backends.Backend, cfg gpt.Config, devices int, histories bool) error {
	if !onCPU(b) {
		return nil
	}
	have, ok := hostMemory()
	if !ok {
		return nil
	}
	return memoryError(cfg, devices, histories, have)
}

// memoryError reports settings that need more than have bytes on devices devices sharing them:
// attentionFloor of the whole batch (each device keeps its share) plus stateFloor on every device.
func memoryError(cfg gpt.Config, devices int, histories bool, have int64) error {
	devices = max(devices, 1)
	attention, state := attentionFloor(cfg, cfg.BatchSize), float64(devices)*stateFloor(cfg, histories)
	if attention+state <= float64(have) {
		return nil
	}
	bytes := func(x float64) string { return humanBytes(int64(min(x, 1<<62))) }
	replicas, advice := "", ""
	if devices > 1 {
		replicas = fmt.Sprintf(" (a copy on each of the %d devices of -devices)", devices)
		advice = ", or train on fewer devices"
	}
	if attention >= state {
		return fmt.Errorf("block_size=%d, batch_size=%d, n_head=%d, n_layer=%d need more memory than this machine has: a training step "+
			"keeps at least %s of attention weights for its backward pass (n_layer*batch_size*n_head*block_size^2 float32 values), "+
			"and %s for the parameters%s, and the machine has %s: lower block_size (the need grows with its square), batch_size, n_head or n_layer",
			cfg.BlockSize, cfg.BatchSize, cfg.NHead, cfg.NLayer, bytes(attention), bytes(state), replicas, humanBytes(have))
	}
	kept := "their weights and AdamW's two moments"
	if cfg.GradClip > 0 {
		kept += ", their gradients (for grad_clip)"
	}
	if histories {
		kept += ", SMI's histories of their spectra"
	}
	return fmt.Errorf("n_embd=%d, n_layer=%d need more memory than this machine has: training keeps at least %s for the %.4g parameters "+
		"(%s, float32)%s, and %s of attention weights, and the machine has %s: "+
		"lower n_embd (the need grows with its square) or n_layer%s",
		cfg.NEmbd, cfg.NLayer, bytes(state), cfg.ParamCount(true), kept, replicas, bytes(attention), humanBytes(have), advice)
}

// onCPU reports whether b computes on the host's CPUs (XLA CPU, or GoMLX's Go backend): whether
// it is not an accelerator, as SMI's own choices by platform read it (spectral.Accelerator).
func onCPU(b backends.Backend) bool { return !spectral.Accelerator(b) }

// hostMemory returns the machine's memory in bytes, from /proc/meminfo (Linux); ok is false
// elsewhere.
func hostMemory() (bytes int64, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10, err == nil && kb > 0
		}
	}
	return 0, false
}

// checkRunData reports a run (its checkpoint's hyperparameters, ctx, from dir) trained on another
// text than corpus.
func checkRunData(ctx *context.Context, corpus *data.Corpus, dir string) error {
	trained := context.GetParamOr(ctx, paramData, "")
	if trained == corpus.SHA256 {
		return nil
	}
	return errOtherText(dir, trained, corpus.SHA256)
}

// errOtherText says that the run in dir was trained on the text of checksum trained, not on the
// one given (given).
func errOtherText(dir, trained, given string) error {
	what := "another text"
	if trained == data.SHA256 {
		what = "tiny Shakespeare"
	}
	return fmt.Errorf("%s was trained on %s (sha256 %s), not on the text given (sha256 %s): pass -data with the text it was trained on",
		dir, what, trained, given)
}

func dataInfo(path string, corpus *data.Corpus) *results.DataInfo {
	return &results.DataInfo{File: filepath.Base(path), SHA256: corpus.SHA256, Bytes: corpus.Bytes,
		Characters: len(corpus.Train) + len(corpus.Val), TinyShakespeare: corpus.IsTinyShakespeare()}
}
