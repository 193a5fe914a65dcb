package gptbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/smi-gomlx/smi/internal/gpt"
)

// TorchInfo describes the PyTorch side of the step-parts benchmark.
type TorchInfo struct {
	Version string `json:"torch"`
	Threads int    `json:"threads"`
	Params  int64  `json:"params"`
}

// Torch is a running scripts/reference/step_parts.py: nanoGPT's model in PyTorch, timing one
// call per request so its calls interleave with ours on the same cores.
type Torch struct {
	Info   TorchInfo
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr strings.Builder
}

// StartTorch starts the script with python (a Python that has torch) for the GPT of cfg.
func StartTorch(python, script string, cfg gpt.Config) (*Torch, error) {
	t := &Torch{}
	t.cmd = exec.Command(python, script,
		"--n_layer", strconv.Itoa(cfg.NLayer), "--n_head", strconv.Itoa(cfg.NHead), "--n_embd", strconv.Itoa(cfg.NEmbd),
		"--block_size", strconv.Itoa(cfg.BlockSize), "--batch_size", strconv.Itoa(cfg.BatchSize),
		"--vocab", strconv.Itoa(cfg.VocabSize))
	t.cmd.Stderr = &t.stderr
	var err error
	if t.stdin, err = t.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := t.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	t.stdout = bufio.NewReader(out)
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting PyTorch (%s %s): %w", python, script, err)
	}
	line, err := t.stdout.ReadString('\n')
	if err != nil {
		return nil, t.failed(err)
	}
	if err := json.Unmarshal([]byte(line), &t.Info); err != nil {
		return nil, t.failed(fmt.Errorf("its first line %q is not its description: %w", strings.TrimSpace(line), err))
	}
	return t, nil
}

// Call performs one request ("forward", "backward" or "step") and returns the time PyTorch
// measured for it.
func (t *Torch) Call(request string) (time.Duration, error) {
	if _, err := io.WriteString(t.stdin, request+"\n"); err != nil {
		return 0, t.failed(err)
	}
	line, err := t.stdout.ReadString('\n')
	if err != nil {
		return 0, t.failed(err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
	if err != nil {
		return 0, t.failed(fmt.Errorf("answer %q to %q", strings.TrimSpace(line), request))
	}
	return time.Duration(s * float64(time.Second)), nil
}

func (t *Torch) failed(err error) error {
	msg := strings.TrimSpace(t.stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	if msg != "" {
		return fmt.Errorf("PyTorch step_parts.py: %w (its last error line: %s)", err, msg)
	}
	return fmt.Errorf("PyTorch step_parts.py: %w", err)
}

// Close ends the process.
func (t *Torch) Close() error {
	_ = t.stdin.Close()
	return t.cmd.Wait()
}
