package study

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/backends"

	"github.com/smi-gomlx/smi/examples/shakespeare/data"
	"github.com/smi-gomlx/smi/examples/shakespeare/results"
	"github.com/smi-gomlx/smi/internal/backend"
)

// measureSpeed times every final model's inference in one process, interleaved (see
// Trainer.InferenceSpeed), unless speed.json already holds exactly these runs.
func (o *Options) measureSpeed(t Trainer, b backends.Backend, corpus *data.Corpus, grid []gridPoint) error {
	if len(grid) == 0 { // every run diverged: no final model
		return nil
	}
	path := filepath.Join(o.Dir, "speed.json")
	names := make([]string, len(grid))
	dirs := make([]string, len(grid))
	for i, p := range grid {
		names[i] = o.name(p)
		dirs[i] = filepath.Join(o.Dir, "runs", names[i])
	}
	if raw, err := os.ReadFile(path); err == nil {
		var old speedFile
		if json.Unmarshal(raw, &old) == nil && old.Order == measureOrder && len(old.Rates) == len(names) && old.Reps == o.SpeedReps && old.Tokens == o.SpeedTokens {
			same := true
			for _, n := range names {
				same = same && len(old.Rates[n]) == o.SpeedReps
			}
			if same {
				return o.publish("speed.json")
			}
		}
	}
	fmt.Printf("Measuring the inference speed of %d models, interleaved...\n", len(dirs))
	rates, err := t.InferenceSpeed(b, corpus, dirs, o.SpeedTokens, o.SpeedReps)
	if err != nil {
		return fmt.Errorf("measuring the inference speed of the study's %d final models: %w\n"+
			"The measurement reads every finished run's final checkpoint; -no_speed leaves it out", len(dirs), err)
	}
	sp := speedFile{Tokens: o.SpeedTokens, Reps: o.SpeedReps, Backend: backend.Description(b), Machine: results.ThisMachine(),
		Date: results.NowUTC(), Rates: map[string][]float64{}, Order: measureOrder}
	for i, n := range names {
		sp.Rates[n] = rates[i]
	}
	if err := results.WriteJSON(path, sp); err != nil {
		return err
	}
	return o.publish("speed.json")
}

// measureSteps times the training steps of the study's configurations runs, interleaved (see
// Trainer.StepTimes), unless steps.json already holds exactly these runs.
func (o *Options) measureSteps(t Trainer, b backends.Backend, corpus *data.Corpus, runs []int) error {
	path := filepath.Join(o.Dir, "steps.json")
	if raw, err := os.ReadFile(path); err == nil {
		var old stepFile
		if json.Unmarshal(raw, &old) == nil && old.Order == measureOrder && len(old.Seconds) == len(runs) && old.Rounds == o.StepRounds && old.StepsPerRound == o.StepSteps {
			same := true
			for _, r := range runs {
				same = same && len(old.Seconds[fmt.Sprintf("run%d", r)]) == o.StepRounds
			}
			if same {
				return o.publish("steps.json")
			}
		}
	}
	var specs []Spec
	for _, r := range runs {
		specs = append(specs, o.spec(gridPoint{r, o.Seeds[0]}))
	}
	secs, err := t.StepTimes(b, corpus, specs, o.StepSteps, o.StepRounds)
	if err != nil {
		return err
	}
	sf := stepFile{StepsPerRound: o.StepSteps, Rounds: o.StepRounds, Backend: backend.Description(b), Machine: results.ThisMachine(),
		Date: results.NowUTC(), Seconds: map[string][]float64{}, Order: measureOrder}
	for i, r := range runs {
		sf.Seconds[fmt.Sprintf("run%d", r)] = secs[i]
	}
	if err := results.WriteJSON(path, sf); err != nil {
		return err
	}
	return o.publish("steps.json")
}
